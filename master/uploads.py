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


def _refusal(member: tarfile.TarInfo, err: tarfile.FilterError) -> str:
    """What tarfile's data filter found wrong with a member, in the upload's words."""
    reasons = {tarfile.AbsolutePathError: "absolute paths are not allowed",
               tarfile.OutsideDestinationError: "'..' would leave the project",
               tarfile.AbsoluteLinkError: f"links to an absolute path ({member.linkname})",
               tarfile.LinkOutsideDestinationError:
                   f"links out of the project ({member.linkname})",
               tarfile.SpecialFileError: "devices, fifos and other special files are not "
                                         "allowed"}
    return f"member '{member.name}': " + next(
        (reason for kind, reason in reasons.items() if isinstance(err, kind)), str(err))


def _open(data: bytes) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as err:
        raise UploadRefused(f"not a tar or tar.gz archive of a project ({err})") from None


def _checked_members(tar: tarfile.TarFile, into: Path, limits: Limits) -> tuple[list, int]:
    """The members as tarfile's data filter lets them be unpacked (nothing outside
    ``into``, no device, no link out, no owner or odd mode), within the limits."""
    members, size = [], 0
    for number, member in enumerate(tar, 1):
        if number > limits.max_files:
            raise UploadRefused(f"more than {limits.max_files} members: too many files "
                                "for a project (compile.max_files)")
        if member.name.startswith(("/", "\\")):
            # The data filter would strip the slash and unpack it inside the project;
            # a project never names its files so: refused as it was meant.
            raise UploadRefused(f"member '{member.name}': absolute paths are not allowed")
        try:
            checked = tarfile.data_filter(member, str(into))
        except tarfile.FilterError as err:
            raise UploadRefused(_refusal(member, err)) from None
        if checked is None:
            continue
        if checked.isfile():
            size += checked.size
            if size > limits.max_unpacked:
                raise UploadRefused(f"more than {limits.max_unpacked} bytes once unpacked "
                                    f"(at member '{member.name}'; compile.max_unpacked)")
        members.append(checked)
    return members, size


def _no_file_under_a_link(members: list) -> None:
    """A link, then a file "through" it: refused (what it names would depend on order)."""
    links = {posixpath.normpath(m.name) for m in members if m.issym() or m.islnk()}
    for member in members:
        parts = posixpath.normpath(member.name).split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                raise UploadRefused(f"member '{'/'.join(parts[:depth])}': a link where the "
                                    "upload also has files")


def unpack(data: bytes, into: Path, limits: Limits) -> UploadedProject:
    """Unpack the upload ``data`` into the new directory ``into``; refuse what is hostile."""
    into.mkdir(parents=True)
    try:
        with _open(data) as tar:
            members, size = _checked_members(tar, into, limits)
            _no_file_under_a_link(members)
            tar.extractall(into, members=members, filter="data")
    except tarfile.FilterError as err:
        raise UploadRefused(f"the archive is refused ({err})") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UploadRefused(f"the archive is damaged ({err})") from None
    crate_dir = _crate_dir(into)
    return UploadedProject(into, crate_dir, _package_name(into / crate_dir / "Cargo.toml"),
                           len(members), size)


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
