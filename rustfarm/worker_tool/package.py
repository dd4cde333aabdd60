"""``package ARCHIVE BINDIR BINARY...``, or ``package ARCHIVE BINDIR --bins-of CRATE_DIR
SUFFIX``: the built binaries in a reproducible .tar.gz (archives.py).

With ``--bins-of``, the binaries are those the crate in CRATE_DIR declares (an
uploaded project, whose binaries farm.yaml does not list), each name followed by
SUFFIX (".exe", ".wasm", or "-" for none), as ``cargo metadata`` reports them.

Result: ``{"archive": NAME, "sha256": DIGEST, "binaries": [{"name": N, "size": BYTES}]}``;
the master checks the archive it receives against the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

from .archives import tar_gz_bytes
from .protocol import answer, fail, say


def crate_binaries(crate_dir: str, suffix: str) -> list[str]:
    """The names of the binaries the crate declares, from `cargo metadata`."""
    done = subprocess.run(["cargo", "metadata", "--no-deps", "--offline", "--format-version",
                           "1"], cwd=crate_dir, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"cargo metadata failed: {done.stderr.strip()}")
    manifest = os.path.realpath(os.path.join(crate_dir, "Cargo.toml"))
    names = [target["name"] + ("" if suffix == "-" else suffix)
             for package in json.loads(done.stdout)["packages"]
             if os.path.realpath(package["manifest_path"]) == manifest
             for target in package["targets"] if "bin" in target["kind"]]
    if not names:
        fail("the crate declares no binary (a library cannot be compiled alone)")
    return names


def package(archive: str, bindir: str, binaries: list[str]) -> dict:
    missing = [b for b in binaries if not os.path.isfile(os.path.join(bindir, b))]
    if missing:
        present = sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []
        say(f"  files there: {', '.join(present) or 'none'}")
        say("  (check `binaries` in farm.yaml against the [[bin]] names in Cargo.toml)")
        fail(f"binary {', '.join(missing)} not found in {bindir}", missing=missing)
    members = []
    for binary in binaries:
        with open(os.path.join(bindir, binary), "rb") as handle:
            members.append((binary, handle.read(), True))
    data = tar_gz_bytes(members)
    with open(archive, "wb") as out:
        out.write(data)
    shipped = [{"name": name, "size": len(content)} for name, content, _ in sorted(members)]
    for binary in shipped:
        say(f"packed {binary['name']} ({binary['size']} bytes)")
    return {"archive": os.path.basename(archive), "sha256": hashlib.sha256(data).hexdigest(),
            "binaries": shipped}


def main(args: list[str]) -> None:
    archive, bindir, *rest = args
    if len(rest) == 3 and rest[0] == "--bins-of":
        binaries = crate_binaries(rest[1], rest[2])
    else:
        binaries = rest
    answer(package(archive, bindir, binaries))
