"""Source snapshots made on the master: one tarball per project revision.

Workers never fetch sources themselves: the master keeps a mirror of each git
project (or reads a local directory), makes ``<revision>.tar.gz`` once, and every
target's build downloads that same file. Workers need neither git credentials
nor network access, which matters for containers and EC2 instances.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from rustfarm.farmfile import Project

# Never shipped to workers: build output and version control data.
SKIPPED_DIRS = {"target", ".git", ".farm"}


class SnapshotError(Exception):
    """The requested revision cannot be had; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    revision: str     # full git commit id, or the content hash of a directory
    path: Path
    log: str

    @property
    def label(self) -> str:
        return self.revision[:12]


def make_snapshot(project: Project, revision: str | None, branch: str | None,
                  sources: Path, snapshots: Path) -> Snapshot:
    """The snapshot of ``revision`` (or the head of ``branch``) of ``project``."""
    out_dir = snapshots / project.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if project.is_git:
        return _git_snapshot(project, revision, branch, sources / f"{project.name}.git", out_dir)
    if revision:
        raise SnapshotError(f"{project.source} is a plain directory, not a git repository: "
                            f"it has no revision {revision!r}; build without a revision")
    return _directory_snapshot(Path(project.source), out_dir)


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if result.returncode != 0:
        raise SnapshotError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _git_snapshot(project: Project, revision: str | None, branch: str | None,
                  mirror: Path, out_dir: Path) -> Snapshot:
    log = []
    if not (mirror / "HEAD").exists():
        log.append(f"cloning {project.source} into the master's mirror")
        _git("clone", "--mirror", "--quiet", project.source, str(mirror))
    else:
        log.append(f"fetching {project.source}")
        _git("remote", "update", "--prune", cwd=mirror)
    wanted = revision or f"refs/heads/{branch or project.branches[0]}"
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", cwd=mirror).strip()
    except SnapshotError:
        what = f"revision {revision}" if revision else f"branch {branch or project.branches[0]}"
        raise SnapshotError(f"{what} not found in {project.source}") from None
    log.append(f"revision {commit}")
    path = out_dir / f"{commit}.tar.gz"
    if path.exists():
        log.append(f"snapshot {path.name} already made")
        return Snapshot(commit, path, "\n".join(log))
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=mirror,
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SnapshotError(f"git archive {commit} failed: {archive.stderr.decode().strip()}")
    _write_atomically(path, _gzip(archive.stdout))
    log.append(f"snapshot {path.name}: {path.stat().st_size} bytes")
    return Snapshot(commit, path, "\n".join(log))


def _directory_files(root: Path) -> list[Path]:
    files = []
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        files.extend(Path(current, name) for name in sorted(names))
    return files


def _directory_snapshot(root: Path, out_dir: Path) -> Snapshot:
    if not root.is_dir():
        raise SnapshotError(f"source directory {root} does not exist")
    files = _directory_files(root)
    digest = hashlib.sha256()
    for path in files:
        relative = path.relative_to(root).as_posix()
        digest.update(relative.encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(path.read_bytes() + b"\0")
    revision = digest.hexdigest()
    path = out_dir / f"{revision}.tar.gz"
    log = [f"directory {root}: {len(files)} files, content hash {revision}"]
    if not path.exists():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for file in files:
                tar.add(file, arcname=file.relative_to(root).as_posix(), recursive=False)
        _write_atomically(path, _gzip(buffer.getvalue()))
    return Snapshot(revision, path, "\n".join(log))


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def prune_snapshots(snapshots: Path, project: str, keep: int) -> None:
    """Keep the ``keep`` newest snapshots of a project."""
    directory = snapshots / project
    if not directory.is_dir():
        return
    files = sorted(directory.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
