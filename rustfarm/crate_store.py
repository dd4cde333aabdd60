"""The farm's crate store: every registry crate and git package a build needed, fetched
once for the whole farm and shared read-only with the build containers.

An entry is a package as ``cargo vendor`` unpacks it (its files and the
``.cargo-checksum.json`` that lists them with their SHA-256, and a registry
crate's .crate checksum), under ``registry/NAME-VERSION-CHECKSUM`` or
``git/NAME-VERSION-COMMIT``: a key of what pins its content in Cargo.lock. An entry
is checked before each build that uses it, against that listing and the lock's
checksum: one that was altered is removed and fetched again, never built. Entries
are renamed into place whole, so a concurrent build sees a whole entry or none.

Each check marks the entries it found as used (their directory's time). An entry no
build used for ``keep_days`` days is removed when the store grows (a build fetches),
at most once an hour; a check and a removal take a lock in turn, so a build never
counts on an entry being removed under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .cargo_lock import LockedPackage
from .plumbing import file_sha256
from .worker_tool.crate_copies import mark_used, prune_unused

CHECKSUM_FILE = ".cargo-checksum.json"


def entry_problem(entry: Path, package: LockedPackage) -> str | None:
    """What is wrong with a package's entry (None when it is whole): a file missing,
    added or changed against its listing, or a listing of another .crate."""
    try:
        listing = json.loads((entry / CHECKSUM_FILE).read_text())
        files = listing["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{package}: its entry has no readable {CHECKSUM_FILE}"
    if package.kind == "registry" and listing.get("package") != package.checksum:
        return f"{package}: its entry is of another .crate than Cargo.lock's checksum"
    found = {path.relative_to(entry).as_posix() for path in entry.rglob("*")
             if not path.is_dir() or path.is_symlink()}
    found.discard(CHECKSUM_FILE)
    if found != set(files):
        extra = sorted(found - set(files))[:3]
        gone = sorted(set(files) - found)[:3]
        return f"{package}: files added {extra} or missing {gone}"
    for name, digest in files.items():
        path = entry / name
        if path.is_symlink() or file_sha256(path) != digest:
            return f"{package}: {name} was changed"
    return None


@dataclass
class StoreCheck:
    present: list[LockedPackage] = field(default_factory=list)
    missing: list[LockedPackage] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)      # what was wrong, removed


@dataclass
class Pruned:
    keys: list[str] = field(default_factory=list)
    size: int = 0                                         # bytes freed


@dataclass(frozen=True)
class CrateStore:
    root: Path
    keep_days: int = 30            # an entry no build used for so long goes; 0: none go

    def entry(self, package: LockedPackage) -> Path:
        return self.root / package.store_key

    @contextlib.contextmanager
    def fetching(self):
        """Held while fetching into the store, by one build at a time of all the farm's
        masters on this machine: the next finds what the last fetched."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".fetching", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _pruning(self, exclusive: bool):
        """Shared by checks, held alone by a removal of unused entries."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".pruning", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def check(self, packages: list[LockedPackage]) -> StoreCheck:
        """Which of the registry and git packages the store has whole, marked as used
        now; an altered entry is removed (so it is fetched again) and said."""
        with self._pruning(exclusive=False):
            return self._check(packages)

    def _check(self, packages: list[LockedPackage]) -> StoreCheck:
        found = StoreCheck()
        for package in packages:
            if package.kind == "path":
                continue
            entry = self.entry(package)
            if not entry.is_dir():
                found.missing.append(package)
                continue
            problem = entry_problem(entry, package)
            if problem:
                found.altered.append(problem)
                self.remove(entry)
                found.missing.append(package)
            else:
                mark_used(str(entry))
                found.present.append(package)
        return found

    def prune(self, now: float | None = None) -> Pruned:
        """The entries no build used for ``keep_days`` days removed, at most once an
        hour (call it while fetching): which, and the room freed."""
        with self._pruning(exclusive=True):
            removed = prune_unused(str(self.root), self.keep_days,
                                   lambda entry: self.remove(Path(entry)), now)
        return Pruned([key for key, _ in removed], sum(size for _, size in removed))

    def remove(self, entry: Path) -> None:
        gone = self.root / "tmp" / f"removed.{os.urandom(8).hex()}"
        gone.parent.mkdir(parents=True, exist_ok=True)
        try:
            entry.rename(gone)
        except OSError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def add(self, package: LockedPackage, unpacked: Path) -> None:
        """Put ``unpacked`` (a directory cargo vendor made for the package) in place,
        checked first; a concurrent build's entry that is already there stays."""
        problem = entry_problem(unpacked, package)
        if problem:
            raise ValueError(problem)
        entry = self.entry(package)
        staged = self.root / "tmp" / f"{entry.name}.{os.urandom(8).hex()}"
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked), staged)
        # Readable by the containers' build user, whoever fetched it.
        for path in [staged, *staged.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.parent.chmod(0o755)
        try:
            staged.rename(entry)
        except OSError:
            shutil.rmtree(staged, ignore_errors=True)
        else:
            mark_used(str(entry))

    def listing_digest(self, package: LockedPackage) -> str:
        """The SHA-256 of an entry's listing: what pins a worker's copy of it
        (worker_tool/crate_copies.py)."""
        return file_sha256(self.entry(package) / CHECKSUM_FILE)

    def pack(self, packages: list[LockedPackage], archive: Path) -> None:
        """A tar of the packages' entries under their keys, for a worker that cannot
        see the store."""
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            for package in packages:
                tar.add(self.entry(package), arcname=package.store_key, recursive=True,
                        filter=_plain_member)


def _plain_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member
