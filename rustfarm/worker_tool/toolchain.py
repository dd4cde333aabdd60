"""``toolchain CRATE_DIR PROJECT PINNED|-``: which Rust builds here, and whether it can
build the crate.

It fails with a message naming both when the crate needs a newer Rust (its
``rust-version`` or ``edition``, following ``.workspace = true`` to the workspace's
manifest) or the worker's Rust is not the toolchain farm.yaml pins for the project.

Result: ``{"rustc": "rustc 1.96.0 (...)", "release": "1.96.0"}``; a refusal adds
``"needs"`` ("Rust 1.85 or newer", "a newer Rust") or ``"pinned"`` to the error.
"""

from __future__ import annotations

import os
import re
import subprocess

from .protocol import answer, fail, say

# The first Rust release of each edition.
EDITION_RUST = {"2015": (1, 0), "2018": (1, 31), "2021": (1, 56), "2024": (1, 85)}
# What an edition this Rust does not know needs.
UNKNOWN = (99, 0)


def version_of(text) -> tuple[int, int] | None:
    """(major, minor) of "1.85" or "1.85.1", or None."""
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _load_manifest(path: str) -> dict | None:
    import tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None


def manifest_value(crate_dir: str, table: str, key: str):
    """``[table] key`` of the crate's Cargo.toml, following ``key.workspace = true``
    to the workspace's ``[workspace.package]`` above it. (value, file) or (None, None)."""
    path = os.path.join(crate_dir, "Cargo.toml")
    manifest = _load_manifest(path)
    if manifest is None:
        return None, None
    value = manifest.get(table, {}).get(key)
    if not (isinstance(value, dict) and value.get("workspace") is True):
        return value, path
    directory = crate_dir
    while True:
        candidate = os.path.join(directory, "Cargo.toml")
        shared = (_load_manifest(candidate) or {}).get("workspace", {}).get("package", {})
        if key in shared:
            return shared[key], candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None, None
        directory = parent


def worker_rustc() -> tuple[str, tuple[int, int], str]:
    """``rustc --version``, its (major, minor) and its release ("1.96.0")."""
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        fail(f"no working rustc on this worker: {err}")
    words = rustc.split()
    have = version_of(words[1]) if len(words) > 1 else None
    release = re.match(r"^\d+\.\d+\.\d+", words[1]) if len(words) > 1 else None
    if have is None or release is None:
        fail(f"cannot read a version from {rustc!r}")
    return rustc, have, release.group(0)


def crate_needs(crate_dir: str) -> list[tuple[tuple[int, int], str, str | None]]:
    """What Rust the crate needs: (version, why, the manifest that says so)."""
    needs = []
    rust_version, where = manifest_value(crate_dir, "package", "rust-version")
    if rust_version is not None and version_of(rust_version):
        needs.append((version_of(rust_version), f'rust-version = "{rust_version}"', where))
    edition, where = manifest_value(crate_dir, "package", "edition")
    if edition is not None:
        needs.append((EDITION_RUST.get(str(edition), UNKNOWN), f'edition = "{edition}"', where))
    return needs


def toolchain(crate_dir: str, project: str, pinned: str) -> dict:
    rustc, have, release = worker_rustc()
    say(rustc)
    found = {"rustc": rustc, "release": release}
    if pinned != "-" and version_of(pinned) != have:
        fail(f"farm.yaml pins toolchain {pinned} for {project}, but this worker has "
             f"Rust {release}", pinned=pinned, **found)
    for need, why, where in crate_needs(crate_dir):
        if need > have:
            shown = os.path.relpath(where, crate_dir) if where else "Cargo.toml"
            wanted = "a newer Rust" if need == UNKNOWN else \
                f"Rust {'.'.join(map(str, need))} or newer"
            fail(f"{project} needs {wanted} ({shown}: {why}), but its toolchain is Rust "
                 f"{release}; pin a newer toolchain in farm.yaml (projects.{project}.toolchain)",
                 needs=wanted, **found)
    return found


def main(args: list[str]) -> None:
    crate_dir, project, pinned = args
    answer(toolchain(crate_dir, project, pinned))
