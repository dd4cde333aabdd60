"""Source snapshots made on the master: one tarball per project revision.

Workers never fetch sources themselves: the master keeps one mirror of each git
project, ``sources/<project>.git``, which its git poller fetches into too (or reads
a local directory), makes ``<revision>.tar.gz`` once, and every target's build
downloads that same file. Workers need neither git credentials
nor network access, which matters for containers and EC2 instances.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from rustfarm.farmfile import Project
from rustfarm.worker_tool.archives import gzip_bytes, member_of, tar_gz_bytes

# Never shipped to workers: build output and version control data.
SKIPPED_DIRS = {"target", ".git", ".farm"}
# Where forges keep a pull request's head (GitHub, Gitea) or a merge request's (GitLab):
# the branch a pull request's change names (master/pull_requests.py).
PULL_REF = re.compile(r"refs/(?:pull|merge-requests)/[1-9][0-9]{0,8}/head")


class SnapshotError(Exception):
    """The requested revision cannot be had; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    revision: str     # full git commit id, or the content hash of a directory
    path: Path
    log: str
    # The commit's time (a directory's: 0), the build's SOURCE_DATE_EPOCH.
    commit_time: int = 0

    @property
    def label(self) -> str:
        return self.revision[:12]


def make_snapshot(project: Project, revision: str | None, branch: str | None,
                  sources: Path, snapshots: Path, git: GitCommands | None = None) -> Snapshot:
    """The snapshot of ``revision`` (or the head of ``branch``) of ``project``;
    ``git.stop()`` from another thread ends it."""
    out_dir = snapshots / project.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if project.is_git:
        return _git_snapshot(project, revision, branch, sources / f"{project.name}.git", out_dir,
                             git or GitCommands())
    if revision:
        raise SnapshotError(f"{project.source} is a plain directory, not a git repository: "
                            f"it has no revision {revision!r}; build without a revision")
    return _directory_snapshot(Path(project.source), out_dir)


class GitCommands:
    """The git commands one snapshot runs, each in a process group of its own, so
    that a timeout, a stopped build or the master's shutdown ends git and every
    helper it started."""

    def __init__(self) -> None:
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for process in list(self._running):
                _kill(process)

    def run(self, command: list[str], cwd: Path | None, timeout: float | None,
            text: bool = True) -> subprocess.CompletedProcess:
        # No prompt for credentials, and give up on a connection that stalls.
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND":
               "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15"}
        with self._lock:
            if self.stopped:
                raise SnapshotError("stopped before git ran")
            process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=text, env=env,
                                       start_new_session=True)
            self._running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.communicate()
            raise SnapshotError(f"{' '.join(command[:3])} did not finish within {timeout:.0f} s"
                                " (fetch_timeout); the source does not answer") from None
        finally:
            with self._lock:
                self._running.discard(process)
        if self.stopped:
            raise SnapshotError(f"git {command[1]} was stopped (the build was stopped)")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _git(git: GitCommands, *args: str, cwd: Path | None = None,
         timeout: float | None = None) -> str:
    # Settings that make a stalled HTTP transfer fail instead of waiting for ever, and
    # that wait (10 s) for a ref lock the project's git poller, fetching into the same
    # mirror, may hold, where git's defaults give up within a second.
    settings = ["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60",
                "-c", "core.filesRefLockTimeout=10000", "-c", "core.packedRefsTimeout=10000"]
    result = git.run(["git", *settings, *args], cwd, timeout)
    if result.returncode != 0:
        raise SnapshotError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _git_snapshot(project: Project, revision: str | None, branch: str | None,
                  mirror: Path, out_dir: Path, git: GitCommands) -> Snapshot:
    log = []
    timeout = project.fetch_timeout
    if not (mirror / "HEAD").exists():
        log.append(f"making the master's mirror of {project.source}")
        _git(git, "init", "--bare", "--quiet", str(mirror))
    log.append(f"fetching {project.source}")
    # Branches and tags only, pruned within them: the project's git poller keeps its
    # own refs (refs/buildbot/...) in this same repository, its workdir.
    _git(git, "fetch", "--quiet", "--prune", "--no-auto-gc", project.source,
         "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", cwd=mirror, timeout=timeout)
    wanted = revision or f"refs/heads/{branch or project.branches[0]}"
    if branch and PULL_REF.fullmatch(branch):
        log.append(f"fetching {branch}")
        _git(git, "fetch", "--quiet", "--no-auto-gc", project.source, f"+{branch}:{branch}",
             cwd=mirror, timeout=timeout)
        wanted = revision or branch
    try:
        commit = _git(git, "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}",
                      cwd=mirror).strip()
    except SnapshotError:
        what = f"revision {revision}" if revision else f"branch {branch or project.branches[0]}"
        raise SnapshotError(f"{what} not found in {project.source}") from None
    log.append(f"revision {commit}")
    commit_time = int(_git(git, "show", "-s", "--format=%ct", commit, cwd=mirror).strip() or 0)
    path = out_dir / f"{commit}.tar.gz"
    if path.exists():
        log.append(f"snapshot {path.name} already made")
        return Snapshot(commit, path, "\n".join(log), commit_time)
    archive = git.run(["git", "archive", "--format=tar", commit], mirror, timeout, text=False)
    if archive.returncode != 0:
        raise SnapshotError(f"git archive {commit} failed: {archive.stderr.decode().strip()}")
    _write_atomically(path, gzip_bytes(archive.stdout))
    log.append(f"snapshot {path.name}: {path.stat().st_size} bytes")
    return Snapshot(commit, path, "\n".join(log), commit_time)


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
        _write_atomically(path, tar_gz_bytes(member_of(str(root), file.relative_to(root)
                                                       .as_posix()) for file in files))
    return Snapshot(revision, path, "\n".join(log))


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
