"""Reproducible .tar.gz archives: the same files give the same bytes, wherever and
whenever they are packed. The farm's one writer of them (binaries on workers,
snapshots, uploads and releases on the master, uploads on the command line).

Members are sorted by name, with no owner, a fixed modification time and a mode
of 0755 (executables) or 0644, in the POSIX (pax) format; gzip writes no name and
no time.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Iterable

# gzip's own default level: half level 9's time on a binary, 0.2 % larger.
LEVEL = 6


def member_info(name: str, size: int, executable: bool = False, mtime: int = 0,
                directory: bool = False) -> tarfile.TarInfo:
    """A member's header with nothing of the machine that packs it."""
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if executable or directory else 0o644
    info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
    return info


def tar_bytes(members: Iterable[tuple[str, bytes, bool]], mtime: int = 0) -> bytes:
    """An uncompressed tar of ``(name, data, executable)`` members, sorted by name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, executable in sorted(members, key=lambda member: member[0]):
            tar.addfile(member_info(name, len(data), executable, mtime), io.BytesIO(data))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzip-compressed with no name and no time."""
    return gzip.compress(data, compresslevel=LEVEL, mtime=0)


def tar_gz_bytes(members: Iterable[tuple[str, bytes, bool]], mtime: int = 0) -> bytes:
    """A reproducible .tar.gz of ``(name, data, executable)`` members."""
    return gzip_bytes(tar_bytes(members, mtime))
