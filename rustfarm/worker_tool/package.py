"""``package ARCHIVE BINDIR BINARY...``, or ``package ARCHIVE --built-by CRATE_DIR
CARGO_COMMAND...``: the built binaries in a reproducible .tar.gz (archives.py).

With ``--built-by``, the binaries are those cargo reports building: the command
(the build's own ``cargo build``, run again in CRATE_DIR, which builds nothing new) with
``--message-format=json-render-diagnostics``, and each ``compiler-artifact`` message
of a binary target names its executable. So a project need not list its binaries,
and gets none that a feature it lacks leaves unbuilt.

Result: ``{"archive": NAME, "sha256": DIGEST, "binaries": [{"name": N, "size": BYTES}]}``;
the master checks the archive it receives against the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from .archives import Member, tar_gz_bytes
from .protocol import answer, fail, say


def executables_cargo_built(crate_dir: str, command: list[str]) -> list[str]:
    """The paths of the binaries cargo reports building with ``command``."""
    done = subprocess.run([*command, "--message-format=json-render-diagnostics"],
                          cwd=crate_dir, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(command[:2])} failed again, listing the binaries it builds")
    found = []
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and "bin" in message.get("target", {}).get("kind", []):
            found.append(message["executable"])
    if not found:
        fail("cargo built no binary: a library cannot be shipped alone (give the project "
             "a [[bin]], or list its binaries in farm.yaml)")
    return sorted(set(found))


def package(archive: str, paths: list[str]) -> dict:
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
    shipped = sorted(({"name": os.path.basename(path), "size": os.path.getsize(path)}
                      for path in paths), key=lambda binary: binary["name"])
    for binary in shipped:
        say(f"packed {binary['name']} ({binary['size']} bytes)")
    return {"archive": os.path.basename(archive), "sha256": hashlib.sha256(data).hexdigest(),
            "binaries": shipped}


def main(args: list[str]) -> None:
    archive, *rest = args
    if rest[:1] == ["--built-by"] and len(rest) > 3:
        paths = executables_cargo_built(rest[1], rest[2:])
    elif len(rest) >= 2:
        bindir, names = rest[0], rest[1:]
        paths = [os.path.join(bindir, name) for name in names]
    else:
        raise ValueError("give BINDIR and binaries, or --built-by, the crate's directory "
                         "and cargo's command")
    answer(package(archive, paths))
