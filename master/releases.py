"""A project's revisions in the artifact store, each one a release of all its targets.

The store holds ``<project>/<revision>/<target>/`` with the target's archive
and its ``SHA256SUMS`` line. A release is what one revision has: every
target's archive with its size and checksum, one ``SHA256SUMS`` for them all
(paths ``<target>/<archive>``) and one archive of all targets, made when first
asked for and kept until the revision's archives change. A revision is
*complete* when every target the project builds has its archive (each one's
build succeeded); ``latest`` is the newest complete revision.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rustfarm.plumbing import partial_path
from rustfarm.worker_tool.archives import Member, write_tar_gz

ALL_DIR = ".all"          # the cached archives of all targets, inside a revision


@dataclass(frozen=True)
class TargetArchive:
    target: str
    name: str
    size: int
    sha256: str
    path: Path
    built_at: float

    @property
    def member(self) -> str:
        return f"{self.target}/{self.name}"


@dataclass(frozen=True)
class Release:
    project: str
    revision: str
    path: Path
    archives: tuple[TargetArchive, ...]

    @property
    def targets(self) -> list[str]:
        return [a.target for a in self.archives]

    @property
    def first_built(self) -> float:
        return min((a.built_at for a in self.archives), default=0.0)

    @property
    def all_name(self) -> str:
        return f"{self.project}-{self.revision}-all.tar.gz"

    def sha256sums(self) -> str:
        return "".join(f"{a.sha256}  {a.member}\n" for a in self.archives)

    def complete_for(self, targets: list[str]) -> bool:
        return bool(targets) and set(targets) <= set(self.targets)


def read_target(directory: Path) -> TargetArchive | None:
    """A target directory's archive as its SHA256SUMS names it; None while incomplete."""
    try:
        line = (directory / "SHA256SUMS").read_text().splitlines()[0]
        digest, name = line.split(maxsplit=1)
        stat = (directory / name.lstrip("*")).stat()
    except (OSError, IndexError, ValueError):
        return None
    name = name.lstrip("*")
    return TargetArchive(directory.name, name, stat.st_size, digest, directory / name,
                         stat.st_mtime)


def read_release(project_dir: Path, revision: str) -> Release | None:
    path = project_dir / revision
    # Hidden, or a pull request's builds (pr-<number>/): never a release.
    if revision.startswith((".", "pr-")) or not path.is_dir():
        return None
    archives = [read_target(child) for child in sorted(path.iterdir())
                if child.is_dir() and not child.name.startswith(".")]
    return Release(project_dir.name, revision, path, tuple(a for a in archives if a))


def releases(project_dir: Path) -> list[Release]:
    """The project's revisions that have at least one archive, newest first."""
    if not project_dir.is_dir():
        return []
    found = [read_release(project_dir, child.name) for child in project_dir.iterdir()]
    return sorted((r for r in found if r and r.archives), key=lambda r: r.first_built,
                  reverse=True)


def previous_release(release: Release) -> Release | None:
    """The project's release first built before ``release``."""
    older = [r for r in releases(release.path.parent) if r.first_built < release.first_built]
    return older[0] if older else None


def latest_complete(project_dir: Path, targets: list[str]) -> Release | None:
    return next((r for r in releases(project_dir) if r.complete_for(targets)), None)


def all_targets_archive(release: Release, cache: Path | None = None) -> Path:
    """The archive of every target's archive and the combined SHA256SUMS, made once per
    set of archives (named by their checksums) and reproducible: sorted, zero times;
    kept in the release's ``.all`` (or ``cache``, for a store that is not a directory)."""
    sums = release.sha256sums()
    key = hashlib.sha256(sums.encode()).hexdigest()[:16]
    cache = cache or release.path / ALL_DIR
    made = cache / f"{key}.tar.gz"
    if made.exists():
        return made
    cache.mkdir(parents=True, exist_ok=True)
    partial = partial_path(made)
    with open(partial, "wb") as out:
        # os.fspath: a bucket's object is fetched into the client's local cache first.
        write_tar_gz(out, [Member("SHA256SUMS", data=sums.encode())]
                     + [Member(a.member, path=os.fspath(a.path)) for a in release.archives])
    os.replace(partial, made)
    for old in cache.iterdir():
        # Not another master's archive still being written (a hidden partial).
        if old != made and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return made

