"""Reproducible .tar.gz archives: the same files give the same bytes, wherever and
whenever they are packed. The farm's one writer of them (binaries on workers,
snapshots, uploads and releases on the master, uploads on the command line).

Members are sorted by name, with no owner, one modification time (0 unless given)
and a mode of 0755 (directories, executables) or 0644, in the POSIX (pax) format;
gzip writes no name and no time.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Iterable

# gzip's own default level: far faster than level 9 on a binary, for a few bytes more
# (docs/benchmarks.md).
LEVEL = 6


@dataclass(frozen=True)
class Member:
    """One entry: ``data``, or the file at ``path`` (copied as the archive is written),
    or a directory, or a symbolic link to ``link``."""

    name: str
    data: bytes | None = None
    path: str | None = None
    executable: bool = False
    directory: bool = False
    link: str | None = None


def member_of(root: str, relative: str) -> Member:
    """The file system's entry at ``root``/``relative`` as a member."""
    path = os.path.join(root, relative)
    if os.path.islink(path):
        return Member(relative, link=os.readlink(path))
    if os.path.isdir(path):
        return Member(relative, directory=True)
    return Member(relative, path=path, executable=os.access(path, os.X_OK))


def _info(member: Member, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.name)
    if member.directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif member.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, member.link, 0o777
    else:
        info.size, info.mode = size, 0o755 if member.executable else 0o644
    info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
    return info


def write_tar_gz(destination: BinaryIO, members: Iterable[Member], mtime: int = 0) -> None:
    """The archive of ``members``, sorted by name, to ``destination``."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=destination, mtime=0,
                       compresslevel=LEVEL) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(members, key=lambda m: m.name):
            if member.path is not None:
                with open(member.path, "rb") as source:
                    tar.addfile(_info(member, os.fstat(source.fileno()).st_size, mtime),
                                source)
            elif member.data is not None:
                tar.addfile(_info(member, len(member.data), mtime), io.BytesIO(member.data))
            else:
                tar.addfile(_info(member, 0, mtime))


def tar_gz_bytes(members: Iterable[Member], mtime: int = 0) -> bytes:
    """A reproducible .tar.gz of ``members``."""
    buffer = io.BytesIO()
    write_tar_gz(buffer, members, mtime)
    return buffer.getvalue()


def tar_bytes(members: Iterable[Member], mtime: int = 0) -> bytes:
    """An uncompressed tar of ``members``, sorted by name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(members, key=lambda m: m.name):
            tar.addfile(_info(member, len(member.data or b""), mtime),
                        io.BytesIO(member.data or b""))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzip-compressed with no name and no time."""
    return gzip.compress(data, compresslevel=LEVEL, mtime=0)
