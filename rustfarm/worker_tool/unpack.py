"""``unpack SNAPSHOT.tar.gz|- DEST``: a source snapshot over a build's source directory.

Only files whose content changed are written: unchanged files keep their
modification time, so cargo recompiles only the crates that changed. Files the
snapshot no longer has are removed. With ``-``, the snapshot comes base64-encoded on
standard input (the master sends a small one along with the command).

Result: ``{"entries": N, "written": N, "removed": N}``.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
import tarfile

from .protocol import answer


def _source(archive: str) -> dict:
    if archive == "-":
        return {"fileobj": io.BytesIO(base64.b64decode(sys.stdin.buffer.read()))}
    return {"name": archive}


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    return stream.read() if stream is not None else b""


def _write_if_changed(path: str, data: bytes, executable: bool) -> bool:
    try:
        with open(path, "rb") as existing:
            if existing.read() == data:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)
    os.chmod(path, 0o755 if executable else 0o644)
    return True


def _remove_unwanted(dest: str, wanted: set[str]) -> int:
    removed = 0
    for root, dirs, files in os.walk(dest, topdown=False):
        for entry in files + dirs:
            path = os.path.join(root, entry)
            if os.path.relpath(path, dest) in wanted:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed += 1
    return removed


def unpack(archive: str, dest: str) -> dict:
    """Unpack ``archive`` over ``dest``; the counts of the result."""
    os.makedirs(dest, exist_ok=True)
    wanted: set[str] = set()
    written = 0
    with tarfile.open(mode="r:gz", **_source(archive)) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            # Nothing outside dest, and only directories and regular files.
            if name.startswith(("..", "/")) or name == ".":
                continue
            wanted.add(name)
            parent = os.path.dirname(name)
            while parent:
                wanted.add(parent)
                parent = os.path.dirname(parent)
            path = os.path.join(dest, name)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
            elif member.isfile():
                written += _write_if_changed(path, _read_member(tar, member),
                                             bool(member.mode & 0o111))
    removed = _remove_unwanted(dest, wanted)
    return {"entries": len(wanted), "written": written, "removed": removed}


def main(args: list[str]) -> None:
    archive, dest = args
    result = unpack(archive, dest)
    answer(result)
