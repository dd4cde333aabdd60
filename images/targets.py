"""The table of toolchain targets (targets.yaml) as data.

``python -m rustfarm.images.targets`` prints the table as README.md shows it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from .errors import ImagesError

TARGETS_FILE = Path(__file__).with_name("targets.yaml")


class TargetError(ImagesError, ValueError):
    """targets.yaml is malformed, or a triple is not in it."""


@dataclass(frozen=True)
class BinaryFormat:
    """What a target's executable header says; checked by tests/support/binaries.py."""

    format: str                 # elf, pe or wasm
    machine: str | None = None  # ELF e_machine name (EM_MIPS) or PE machine (AMD64)
    bits: int | None = None     # ELF class
    endian: str | None = None   # little or big
    float: str | None = None    # ARM float ABI: hard or soft

    def describe(self) -> str:
        if self.format == "elf":
            parts = [f"ELF{self.bits}", self.machine.removeprefix("EM_"), self.endian]
            if self.float:
                parts.append(f"{self.float}-float")
            return " ".join(parts)
        if self.format == "pe":
            return f"PE {self.machine}"
        return "wasm"


@dataclass(frozen=True)
class Target:
    triple: str
    debian_arch: str | None
    packages: tuple[str, ...]
    gnu: str | None
    qemu: str | None
    binary: BinaryFormat
    arch: str
    linker_override: str | None = None

    @property
    def image(self) -> str:
        return f"rustfarm/{self.triple}"

    @property
    def env_triple(self) -> str:
        """The triple as cargo spells it in CARGO_TARGET_<TRIPLE>_* names."""
        return self.triple.upper().replace("-", "_")

    @property
    def linker(self) -> str | None:
        if self.linker_override:
            return self.linker_override
        return f"{self.gnu}-gcc" if self.gnu else None

    @property
    def is_native(self) -> bool:
        """Runs on the build machine itself (x86_64 Linux), with no emulator."""
        return self.triple == "x86_64-unknown-linux-gnu"

    @property
    def runs_here(self) -> bool:
        """Its programs can run in its image: under qemu-user or natively."""
        return bool(self.qemu) or self.is_native

    def environment(self) -> dict[str, str]:
        """The variables the target's image sets, in the order it sets them."""
        env = {"RUSTFARM_TARGET": self.triple}
        if self.linker:
            env[f"CARGO_TARGET_{self.env_triple}_LINKER"] = self.linker
        if self.qemu:
            env[f"CARGO_TARGET_{self.env_triple}_RUNNER"] = self.qemu
        if self.gnu:
            lower = self.triple.replace("-", "_")
            env[f"CC_{lower}"] = f"{self.gnu}-gcc"
            env[f"AR_{lower}"] = f"{self.gnu}-ar"
        return env


# Targets people ask for that Debian bookworm has no Rust std for, and why.
UNAVAILABLE = {
    "mips-unknown-linux-gnu":
        "big-endian MIPS has no Rust std in Debian bookworm (no mips architecture);"
        " it needs rustup's nightly and -Zbuild-std, which need the internet:"
        " see images/README.md",
    "mips64-unknown-linux-gnuabi64":
        "big-endian MIPS has no Rust std in Debian bookworm; see images/README.md",
    "arm-unknown-linux-gnueabi":
        "Debian's armel std is built for armv5te-unknown-linux-gnueabi (use that"
        " target: same soft-float EABI, runs on ARMv5TE and later); see images/README.md",
}


def _parse(row: dict) -> Target:
    try:
        binary = BinaryFormat(**row["binary"])
        target = Target(
            triple=row["triple"],
            debian_arch=row.get("debian_arch") or None,
            packages=tuple(row.get("packages") or ()),
            gnu=row.get("gnu") or None,
            qemu=row.get("qemu") or None,
            binary=binary,
            arch=row["arch"],
            linker_override=row.get("linker") or None,
        )
    except (KeyError, TypeError) as exc:
        raise TargetError(f"{TARGETS_FILE.name}: bad row {row!r}: {exc}") from None
    if binary.format not in ("elf", "pe", "wasm"):
        raise TargetError(f"{target.triple}: unknown binary format {binary.format!r}")
    return target


def load_targets(path: Path = TARGETS_FILE) -> tuple[Target, ...]:
    rows = yaml.safe_load(path.read_text())["targets"]
    targets = tuple(_parse(row) for row in rows)
    triples = [t.triple for t in targets]
    if len(set(triples)) != len(triples):
        raise TargetError(f"{path.name}: a triple is listed twice")
    return targets


@cache
def default_targets() -> tuple[Target, ...]:
    return load_targets()


def get_target(triple: str, targets: tuple[Target, ...] | None = None) -> Target:
    for target in targets or default_targets():
        if target.triple == triple:
            return target
    known = ", ".join(t.triple for t in targets or default_targets())
    if triple in UNAVAILABLE:
        raise TargetError(f"no image for {triple}: {UNAVAILABLE[triple]}")
    raise TargetError(f"unknown target {triple!r}; known targets: {known}")


def markdown_table(targets: tuple[Target, ...] | None = None) -> str:
    """The targets table of README.md."""
    lines = [
        "| target | Debian arch | packages on top of rustfarm/rust | linker | runner | artifact |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in targets or default_targets():
        runner = t.qemu or ("native" if t.is_native else "none")
        packages = ", ".join(f"`{p}`" for p in t.packages) or "none"
        lines.append(f"| `{t.triple}` | {t.debian_arch or '-'} | {packages} "
                     f"| `{t.linker}` | {runner} | {t.binary.describe()} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
