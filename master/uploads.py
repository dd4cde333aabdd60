"""An uploaded Cargo project, checked as hostile before anything builds it.

The upload is a tar (or gzip-compressed tar) of a project directory, sent by
anyone holding a token. It is read member by member, and refused with the
member and the reason when a member has an absolute path or ``..``, is a link
(hard or symbolic) leading out of the project, a device, fifo or socket, or
when the members are too many or too large once unpacked (a tar bomb). Nothing
is written outside the upload's own directory: members are written by this
code, never by ``tarfile.extract``. The project is then repacked as the
source tarball the build steps download, with only regular files, directories
and links that stay inside.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rustfarm.worker_tool.archives import member_of, write_tar_gz


class UploadRefused(Exception):
    """The upload is not a project the farm will build; the message says why (for a 400)."""


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_unpacked: int


@dataclass(frozen=True)
class UploadedProject:
    root: Path             # the unpacked project
    crate_dir: str         # the directory of its Cargo.toml, relative to root ("" at the top)
    name: str              # its package name
    files: int
    size: int


def _member_path(name: str) -> str:
    """The member's path, normalized; refused when it would leave the project."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UploadRefused(f"member '{name}': absolute paths are not allowed")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{name}/":
        raise UploadRefused(f"member '{name}': '..' would leave the project")
    return "" if normal == "." else normal


def _link_target_inside(member: tarfile.TarInfo, path: str) -> str:
    target = member.linkname
    if target.startswith("/"):
        raise UploadRefused(f"member '{member.name}': links to an absolute path ({target})")
    base = posixpath.dirname(path) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UploadRefused(f"member '{member.name}': links out of the project ({target})")
    return resolved


def _open(data: bytes) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as err:
        raise UploadRefused(f"not a tar or tar.gz archive of a project ({err})") from None


def unpack(data: bytes, into: Path, limits: Limits) -> UploadedProject:
    """Unpack the upload ``data`` into the new directory ``into``; refuse what is hostile."""
    into.mkdir(parents=True)
    files = size = 0
    links: list[tuple[str, str, bool]] = []
    try:
        with _open(data) as tar:
            for member in tar:
                path = _member_path(member.name)
                files += 1
                if files > limits.max_files:
                    raise UploadRefused(f"more than {limits.max_files} members: too many files "
                                        "for a project (compile.max_files)")
                if member.isdev() or member.isfifo() or not (
                        member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise UploadRefused(f"member '{member.name}': devices, fifos and other "
                                        "special files are not allowed")
                if not path:
                    continue
                if member.issym() or member.islnk():
                    links.append((path, _link_target_inside(member, path), member.issym()))
                    continue
                destination = into / path
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                size += member.size
                if size > limits.max_unpacked:
                    raise UploadRefused(f"more than {limits.max_unpacked} bytes once unpacked "
                                        f"(at member '{member.name}'; compile.max_unpacked)")
                _write(tar, member, destination, into)
    except tarfile.TarError as err:
        raise UploadRefused(f"the archive is damaged ({err})") from None
    for path, target, symbolic in links:
        destination = into / path
        _inside(destination.parent, into, path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(destination):
            raise UploadRefused(f"member '{path}': a link where the upload also has files")
        if symbolic:
            os.symlink(os.path.relpath(into / target, destination.parent), destination)
        elif (into / target).is_file():
            os.link(into / target, destination)
    crate_dir = _crate_dir(into)
    return UploadedProject(into, crate_dir, _package_name(into / crate_dir / "Cargo.toml"),
                           files, size)


def _inside(directory: Path, root: Path, member: str) -> None:
    """A directory met on the way must not be a link out (a link unpacked before it)."""
    real, top = os.path.realpath(directory), os.path.realpath(root)
    if os.path.commonpath([real, top]) != top:
        raise UploadRefused(f"member '{member}': its directory leads out of the project")


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, destination: Path, root: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    _inside(destination.parent, root, member.name)
    source = tar.extractfile(member)
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    if member.mode & 0o111:
        os.chmod(destination, 0o755)


def _crate_dir(root: Path) -> str:
    """Where Cargo.toml is: at the top, or in the one directory an archive of a directory
    has at its top (``tar -c project/``, or npm's tar.Pack of a directory)."""
    if (root / "Cargo.toml").is_file():
        return ""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "Cargo.toml").is_file():
        return entries[0].name
    raise UploadRefused("no Cargo.toml at the top of the upload (nor in its one directory)")


def _package_name(manifest: Path) -> str:
    try:
        parsed = tomllib.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UploadRefused(f"Cargo.toml cannot be read: {err}") from None
    name = parsed.get("package", {}).get("name") if isinstance(parsed.get("package"), dict) \
        else None
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise UploadRefused("Cargo.toml has no [package] name (a workspace root cannot be "
                            "compiled as one upload)")
    return name


def repack(project: UploadedProject, archive: Path) -> None:
    """The unpacked project as the source tarball the build downloads (a reproducible
    archive), without the cargo target directory."""
    skipped = project.root / project.crate_dir / "target"
    members = [member_of(str(project.root), path.relative_to(project.root).as_posix())
               for path in project.root.rglob("*")
               if not (path == skipped or path.is_relative_to(skipped))]
    with open(archive, "wb") as out:
        write_tar_gz(out, members)
