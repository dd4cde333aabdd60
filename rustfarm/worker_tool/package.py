"""``package ARCHIVE BINDIR BINARY...``, or ``package ARCHIVE [--only NAME,...]
--built-by CRATE_DIR CARGO_COMMAND...``: the built binaries in a reproducible .tar.gz
(archives.py).

With ``--built-by``, the binaries are those cargo reports building (``--only``: those
of them named): the command (the build's own ``cargo build``, run again in CRATE_DIR,
which builds nothing new) with ``--message-format=json-render-diagnostics``; each
``compiler-artifact`` message of a binary target names its executable, and those
whose files are the target's (not the build machine's: build scripts, proc macros)
name the packages linked into the binaries, for the release's SBOM.

Result: ``{"archive": NAME, "sha256": DIGEST, "binaries": [{"name": N, "size": BYTES,
"sha256": DIGEST}], "linked": [PACKAGE_ID...], "crate": {"version": ...,
"description": ..., "license": ...}}`` (what Cargo.toml says, for the release's
packages); the master checks the archive it receives against the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from .archives import Member, tar_gz_bytes
from .digests import file_sha256
from .protocol import answer, fail, say
from .toolchain import manifest_value


def _target_of(command: list[str]) -> str | None:
    for flag, value in zip(command, command[1:]):
        if flag == "--target":
            return value
    return None


def cargo_built(crate_dir: str, command: list[str]) -> tuple[list[str], list[str]]:
    """The paths of the binaries cargo reports building with ``command``, and the
    package ids of what it compiled for the command's ``--target``."""
    done = subprocess.run([*command, "--message-format=json-render-diagnostics"],
                          cwd=crate_dir, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(command[:2])} failed again, listing the binaries it builds")
    target = _target_of(command)
    found, linked = [], set()
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("reason") != "compiler-artifact":
            continue
        if message.get("executable") and "bin" in message.get("target", {}).get("kind", []):
            found.append(message["executable"])
        if target and any(f"/{target}/" in name for name in message.get("filenames", [])):
            linked.add(message.get("package_id", ""))
    if not found:
        fail("cargo built no binary: a library cannot be shipped alone (give the project "
             "a [[bin]], or list its binaries in farm.yaml)")
    return sorted(set(found)), sorted(linked - {""})


def crate_about(crate_dir: str) -> dict:
    """The crate's version and description, as its Cargo.toml (or workspace) says, for
    the release's packages."""
    about = {}
    for key in ("version", "description", "license"):
        value, _ = manifest_value(crate_dir, "package", key)
        if isinstance(value, str):
            about[key] = value
    return about


def package(archive: str, paths: list[str], linked: list[str] | None = None) -> dict:
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        places = sorted({os.path.dirname(p) for p in missing})
        present = sorted(os.listdir(places[0])) if os.path.isdir(places[0]) else []
        names = [os.path.basename(p) for p in missing]
        say(f"  files there: {', '.join(present) or 'none'}")
        say("  (check `binaries` in farm.yaml against the [[bin]] names in Cargo.toml)")
        fail(f"binary {', '.join(names)} not found in {places[0]}", missing=names)
    data = tar_gz_bytes(Member(os.path.basename(path), path=path, executable=True)
                        for path in paths)
    with open(archive, "wb") as out:
        out.write(data)
    shipped = sorted(({"name": os.path.basename(path), "size": os.path.getsize(path),
                       "sha256": file_sha256(path)} for path in paths),
                     key=lambda binary: binary["name"])
    for binary in shipped:
        say(f"packed {binary['name']} ({binary['size']} bytes)")
    return {"archive": os.path.basename(archive), "sha256": hashlib.sha256(data).hexdigest(),
            "binaries": shipped, "linked": linked or []}


def main(args: list[str]) -> None:
    archive, *rest = args
    only = None
    if rest[:1] == ["--only"] and len(rest) > 1:
        only, rest = [name for name in rest[1].split(",") if name], rest[2:]
    linked, about = None, {}
    if rest[:1] == ["--built-by"] and len(rest) > 3:
        paths, linked = cargo_built(rest[1], rest[2:])
        about = crate_about(rest[1])
        if only is not None:
            built = {os.path.basename(path): path for path in paths}
            place = os.path.dirname(paths[0])
            paths = [built.get(name, os.path.join(place, name)) for name in only]
    elif len(rest) >= 2:
        bindir, names = rest[0], rest[1:]
        paths = [os.path.join(bindir, name) for name in names]
    else:
        raise ValueError("give BINDIR and binaries, or --built-by, the crate's directory "
                         "and cargo's command")
    answer({**package(archive, paths, linked), "crate": about})
