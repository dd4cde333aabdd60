"""The table of targets and toolchains (targets.yaml) as data.

Everything else asks this module what a target is: the images build from it,
farm.yaml is checked against it, the master takes runners and variables from
it. ``farm targets --markdown`` prints the table as images/README.md shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Mapping

import yaml

from .errors import FarmError

TABLE_FILE = Path(__file__).with_name("targets.yaml")
LIBCS = ("gnu", "musl", "mingw", "none")
BINARY_FORMATS = ("elf", "pe", "wasm")
STD_KINDS = ("toolchain", "source")
# The machine the farm and its images run on.
HOST_TRIPLE = "x86_64-unknown-linux-gnu"


class TargetError(FarmError, ValueError):
    """targets.yaml is malformed, or names no such target or toolchain."""


def cargo_target_variable(triple: str, setting: str) -> str:
    """``CARGO_TARGET_<TRIPLE>_<SETTING>``, spelt as cargo reads it."""
    return f"CARGO_TARGET_{re.sub(r'[^A-Za-z0-9]', '_', triple).upper()}_{setting}"


def image_tag(reference: str) -> str:
    """An image reference's tag (``rustfarm/x:1.96-3f2a...`` -> ``1.96-3f2a...``), its
    digest for a digest reference, "" for one without either."""
    if "@" in reference:
        return reference.partition("@")[2]
    last = reference.rpartition("/")[2]
    return last.rpartition(":")[2] if ":" in last else ""


def image_toolchain(reference: str) -> str | None:
    """The toolchain an image's tag names: ``rustfarm/x:1.96-3f2a...`` -> ``1.96``."""
    match = re.match(r"^(\d+\.\d+)-", image_tag(reference))
    return match.group(1) if match else None


# The toolchain images' CMake toolchain file (images/scripts/target.cmake).
CMAKE_TOOLCHAIN_FILE = "/usr/local/share/rustfarm/target.cmake"


def cc_crate_suffix(triple: str) -> str:
    """The triple as the cc crate spells it in ``CC_<triple>`` and ``AR_<triple>``."""
    return triple.replace("-", "_")


@dataclass(frozen=True)
class Toolchain:
    version: str                  # "1.96": the image tag's prefix and farm.yaml's value
    about: str
    packages: tuple[str, ...]
    std_source: str | None        # where std's sources are, to build std for a target
    default: bool = False


@dataclass(frozen=True)
class BinaryFormat:
    """What a target's executable header says; checked by tests/support/binaries.py."""

    format: str                 # elf, pe or wasm
    machine: str | None = None  # ELF e_machine name (EM_MIPS) or PE machine (AMD64)
    bits: int | None = None     # ELF class
    endian: str | None = None   # little or big
    float: str | None = None    # ARM float ABI: hard or soft
    abi: str | None = None      # MIPS ABI: o32 or n64

    def describe(self) -> str:
        if self.format == "elf":
            parts = [f"ELF{self.bits}", self.machine.removeprefix("EM_"), self.endian]
            if self.float:
                parts.append(f"{self.float}-float")
            if self.abi:
                parts.append(self.abi)
            return " ".join(parts)
        if self.format == "pe":
            return f"PE {self.machine}"
        return "wasm"


# Where std comes from for one (target, toolchain): "toolchain", "source", or
# the Debian packages that install it.
StdSource = str | tuple[str, ...]


@dataclass(frozen=True)
class TargetSpec:
    triple: str
    arch: str
    libc: str
    binary: BinaryFormat
    std: Mapping[str, StdSource]
    cross: str | None = None
    zig: str | None = None
    packages: tuple[str, ...] = ()
    rustflags: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    qemu: str | None = None       # None: nothing runs it here; "": runs natively
    debian: str | None = None     # Debian's architecture name (the release's .deb)
    openwrt: str | None = None    # OpenWrt's package architecture (the release's .ipk)

    @property
    def image(self) -> str:
        return f"rustfarm/{self.triple}"

    @property
    def toolchains(self) -> tuple[str, ...]:
        return tuple(self.std)

    @property
    def is_native(self) -> bool:
        """Runs on the build machine itself, with no emulator."""
        return self.qemu == ""

    @property
    def runs_here(self) -> bool:
        """Its programs run in its image: under qemu-user or natively."""
        return self.qemu is not None

    @property
    def executable_suffix(self) -> str:
        return {"pe": ".exe", "wasm": ".wasm"}.get(self.binary.format, "")

    @property
    def linker(self) -> str:
        if self.libc == "musl":
            return f"{self.triple}-cc"           # zig cc, written by install-target.sh
        if self.libc == "none":
            return "rustfarm-wasm-ld"            # zig's wasm-ld (images/rust/1.96)
        return f"{self.cross}-gcc"

    @property
    def cc(self) -> str | None:
        """The C compiler for build scripts' C code (the cc crate)."""
        return None if self.libc == "none" else self.linker

    @property
    def cxx(self) -> str | None:
        """The C++ compiler for build scripts' C++ code (the cc and cmake crates)."""
        if self.libc == "musl":
            return f"{self.triple}-c++"          # zig c++, linked by install-target.sh
        return f"{self.cross}-g++" if self.cross else None

    @property
    def ar(self) -> str | None:
        if self.libc == "musl":
            return "rustfarm-zig-ar"
        return f"{self.cross}-ar" if self.cross else None

    @property
    def ranlib(self) -> str | None:
        if self.libc == "musl":
            return "rustfarm-zig-ranlib"
        return f"{self.cross}-ranlib" if self.cross else None

    def std_for(self, toolchain: str) -> StdSource | None:
        return self.std.get(toolchain)

    def std_is_multiarch(self, toolchain: str) -> bool:
        """std comes as Debian packages of the target's architecture (pkg:arch),
        which install that architecture's own libc where qemu-user looks."""
        std = self.std_for(toolchain)
        return isinstance(std, tuple) and any(":" in package for package in std)

    def image_environment(self, toolchain: str) -> dict[str, str]:
        """The variables the target's image sets for cargo, cc and qemu, in order."""
        env = {"RUSTFARM_TARGET": self.triple,
               cargo_target_variable(self.triple, "LINKER"): self.linker}
        if self.qemu:
            env[cargo_target_variable(self.triple, "RUNNER")] = self.qemu
        if self.rustflags:
            env[cargo_target_variable(self.triple, "RUSTFLAGS")] = " ".join(self.rustflags)
        suffix = cc_crate_suffix(self.triple)
        for variable, program in (("CC", self.cc), ("CXX", self.cxx), ("AR", self.ar),
                                  ("RANLIB", self.ranlib)):
            if program:
                env[f"{variable}_{suffix}"] = program
        if self.cc:
            # For crates that build C libraries with CMake (the cmake crate).
            env[f"CMAKE_TOOLCHAIN_FILE_{suffix}"] = CMAKE_TOOLCHAIN_FILE
        if self.cflags:
            env[f"CFLAGS_{suffix}"] = " ".join(self.cflags)
        if self.qemu and self.libc == "gnu" and not self.std_is_multiarch(toolchain):
            # The cross C library under /usr/<cross> holds the loader and libc.
            env["QEMU_LD_PREFIX"] = f"/usr/{self.cross}"
        return env


@dataclass(frozen=True)
class TargetTable:
    toolchains: Mapping[str, Toolchain]
    targets: Mapping[str, TargetSpec]
    path: Path = field(default=TABLE_FILE, compare=False)

    def __iter__(self):
        return iter(self.targets.values())

    def __contains__(self, triple: str) -> bool:
        return triple in self.targets

    @property
    def default_toolchain(self) -> str:
        return next(t.version for t in self.toolchains.values() if t.default)

    def get(self, triple: str) -> TargetSpec:
        try:
            return self.targets[triple]
        except KeyError:
            raise TargetError(f"unknown target {triple!r}; the farm's targets: "
                              f"{', '.join(self.targets)}") from None

    def toolchain(self, version: str) -> Toolchain:
        try:
            return self.toolchains[version]
        except KeyError:
            raise TargetError(f"unknown toolchain {version!r}; toolchains: "
                              f"{', '.join(self.toolchains)}") from None

    def pairs(self, toolchains=None) -> list[tuple[TargetSpec, str]]:
        """(target, toolchain) for every image the table describes, table order."""
        wanted = toolchains or tuple(self.toolchains)
        return [(target, version) for version in wanted for target in self
                if version in target.std]


def _texts(row: dict, key: str) -> tuple[str, ...]:
    value = row.get(key) or ()
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{key} must be a list of strings")
    return tuple(value)


def _std(row: dict, toolchains: Mapping[str, Toolchain]) -> dict[str, StdSource]:
    std: dict[str, StdSource] = {}
    for version, source in (row.get("std") or {}).items():
        version = str(version)
        if version not in toolchains:
            raise ValueError(f"std names toolchain {version!r}, which is not under toolchains")
        if isinstance(source, list):
            std[version] = tuple(str(item) for item in source)
        elif source in STD_KINDS:
            if source == "source" and not toolchains[version].std_source:
                raise ValueError(f"toolchain {version} has no std_source to build std from")
            std[version] = source
        else:
            raise ValueError(f"std of toolchain {version} must be toolchain, source or a list"
                             f" of Debian packages, not {source!r}")
    if not std:
        raise ValueError("std names no toolchain")
    return std


def _target(row: dict, toolchains: Mapping[str, Toolchain]) -> TargetSpec:
    binary = BinaryFormat(**row["binary"])
    if binary.format not in BINARY_FORMATS:
        raise ValueError(f"unknown binary format {binary.format!r}")
    libc = row["libc"]
    if libc not in LIBCS:
        raise ValueError(f"libc must be one of {', '.join(LIBCS)}, not {libc!r}")
    qemu = row.get("qemu")
    target = TargetSpec(
        triple=row["triple"], arch=row["arch"], libc=libc, binary=binary,
        std=_std(row, toolchains), cross=row.get("cross") or None, zig=row.get("zig") or None,
        packages=_texts(row, "packages"), rustflags=_texts(row, "rustflags"),
        cflags=_texts(row, "cflags"), qemu=None if qemu is None else str(qemu),
        debian=row.get("debian") or None, openwrt=row.get("openwrt") or None)
    if libc in ("gnu", "mingw") and not target.cross:
        raise ValueError(f"a {libc} target needs cross (its gcc's prefix)")
    if libc == "musl" and not target.zig:
        raise ValueError("a musl target needs zig (zig's -target)")
    return target


def load_table(path: Path = TABLE_FILE) -> TargetTable:
    try:
        data = yaml.safe_load(path.read_text())
        toolchains = {}
        for version, row in data["toolchains"].items():
            version = str(version)
            toolchains[version] = Toolchain(version=version, about=row.get("about", ""),
                                            packages=tuple(row.get("packages") or ()),
                                            std_source=row.get("std_source"),
                                            default=bool(row.get("default")))
        if sum(t.default for t in toolchains.values()) != 1:
            raise ValueError("exactly one toolchain must be the default")
        targets: dict[str, TargetSpec] = {}
        for row in data["targets"]:
            try:
                target = _target(row, toolchains)
            except (KeyError, TypeError, ValueError) as exc:
                raise TargetError(f"{path.name}: target {row.get('triple', row)!r}: {exc}") from None
            if target.triple in targets:
                raise TargetError(f"{path.name}: {target.triple} is listed twice")
            targets[target.triple] = target
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, TargetError):
            raise
        raise TargetError(f"{path}: {exc}") from None
    return TargetTable(toolchains=toolchains, targets=targets, path=path)


@cache
def target_table() -> TargetTable:
    """The table shipped with rustfarm."""
    return load_table()


def markdown_table(table: TargetTable | None = None) -> str:
    """The targets table of images/README.md."""
    table = table or target_table()
    versions = list(table.toolchains)
    lines = [
        "| target | libc | linker | runner | " + " | ".join(f"std {v}" for v in versions)
        + " | artifact |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in versions) + " | --- |",
    ]
    for t in table:
        runner = "native" if t.is_native else (t.qemu or "none")
        linker = f"zig cc -target {t.zig}" if t.zig else (
            "zig wasm-ld" if t.libc == "none" else t.linker)
        std = []
        for version in versions:
            source = t.std_for(version)
            if source is None:
                std.append("-")
            elif isinstance(source, tuple):
                std.append(", ".join(f"`{p}`" for p in source))
            else:
                std.append({"source": "built from source", "toolchain": "with rustc"}[source])
        lines.append(f"| `{t.triple}` | {t.libc} | `{linker}` | {runner} | "
                     + " | ".join(std) + f" | {t.binary.describe()} |")
    return "\n".join(lines)
