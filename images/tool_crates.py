"""Crates the target images build their audit tools from, fetched on the host into a
cache.

Build containers reach no registry, so the machine fetches: ``cargo vendor`` of
target/audit-tools (a package whose Cargo.lock pins cargo-auditable and
rust-audit-info with their checksums), then of each tool's own Cargo.lock, which
comes inside its checksummed crate. Everything is therefore pinned by the one
Cargo.lock in the repository, whose contents are part of the images' content tags.
The result is one directory source (``vendor/``, plus ``vendored.toml`` naming it)
that the image's audit-tools stage builds from with ``cargo install --locked
--offline``. The cache lives outside the repository, by default
~/.cache/rustfarm/tool-crates (RUSTFARM_TOOL_CRATE_CACHE overrides it), one
directory per digest of that Cargo.lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

from rustfarm.dependencies import (CargoSettings, DependencyError, machine_config_files,
                                   run_cargo)
from rustfarm.errors import ImagesError

# Where the stage finds the crates, and the configuration file that points cargo there.
CONTEXT_DIR = "tool-crates"
STAGE_DIR = "/tmp/tool-crates"
CONFIG_NAME = "vendored.toml"
_DONE = ".complete"


class ToolCrateError(ImagesError):
    """The audit tools' crates could not be had."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "rustfarm" / "tool-crates"
    return Path(os.environ.get("RUSTFARM_TOOL_CRATE_CACHE", default))


def tools(project: Path) -> list[str]:
    """The binary crates the package pins: its dependencies' names."""
    manifest = tomllib.loads((project / "Cargo.toml").read_text())
    return sorted(manifest.get("dependencies", {}))


def _vendor(settings: CargoSettings, manifests: list[Path], into: Path, cwd: Path) -> None:
    syncs = [item for manifest in manifests[1:] for item in ("--sync", str(manifest))]
    try:
        run_cargo(settings, ["vendor", "--locked", "--versioned-dirs", "--manifest-path",
                             str(manifests[0]), *syncs, str(into)],
                  cwd, "cargo vendor of the audit tools' crates")
    except DependencyError as err:
        raise ToolCrateError(str(err)) from None


def ensure_tool_crates(project: Path, log=print) -> Path:
    """The directory holding ``vendor/`` and ``vendored.toml`` for the tools that
    ``project`` pins, fetched into the cache if it is not there yet."""
    lock = (project / "Cargo.lock").read_bytes()
    place = cache_dir() / hashlib.sha256(lock).hexdigest()[:16]
    if (place / _DONE).is_file():
        return place
    names = tools(project)
    log(f"    fetching the crates of {', '.join(names)} into {place}")
    place.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rustfarm-tool-crates-",
                                     dir=place.parent) as scratch:
        work = Path(scratch)
        settings = CargoSettings(cargo_home=work / "cargo-home",
                                 config_files=machine_config_files())
        pinned = work / "pinned"
        shutil.copytree(project, pinned, ignore=shutil.ignore_patterns("target"))
        _vendor(settings, [pinned / "Cargo.toml"], work / "top", work)
        built = []
        for name in names:
            found = sorted((work / "top").glob(f"{name}-[0-9]*"))
            if len(found) != 1 or not (found[0] / "Cargo.lock").is_file():
                raise ToolCrateError(f"{name}: cargo vendor gave {len(found)} copies, or its"
                                     " crate holds no Cargo.lock to build it --locked")
            built.append(found[0])
        result = work / "result"
        _vendor(settings, [b / "Cargo.toml" for b in built], result / "vendor", work)
        for crate in built:
            if not (result / "vendor" / crate.name).exists():
                shutil.copytree(crate, result / "vendor" / crate.name)
        (result / CONFIG_NAME).write_text(
            '[source.crates-io]\nreplace-with = "vendored"\n\n'
            f'[source.vendored]\ndirectory = "{STAGE_DIR}/vendor"\n')
        (result / "tools").write_text("".join(f"{b.name}\n" for b in built))
        (result / _DONE).write_text("")
        shutil.rmtree(place, ignore_errors=True)
        result.rename(place)
    return place


def context_files(project: Path, log=print):
    """(build-context path, bytes, mode) of every fetched file, under CONTEXT_DIR."""
    place = ensure_tool_crates(project, log)
    for path in sorted(place.rglob("*")):
        if path.is_file() and path.name != _DONE:
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            yield f"{CONTEXT_DIR}/{path.relative_to(place).as_posix()}", path.read_bytes(), mode
