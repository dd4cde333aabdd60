"""Build steps of a Rust cross build: snapshot, unpack, cargo, package, upload, prune."""

from __future__ import annotations

import shutil
from pathlib import Path

from buildbot.process import buildstep, results
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.farmfile import Project

from .snapshots import SnapshotError, make_snapshot, prune_snapshots

_project_locks: dict[str, defer.DeferredLock] = {}


def _project_lock(project: str) -> defer.DeferredLock:
    """One snapshot at a time per project: all targets share the mirror and the tarball."""
    return _project_locks.setdefault(project, defer.DeferredLock())


class SnapshotSource(buildstep.BuildStep):
    """On the master: fetch the project and make the revision's source tarball."""

    name = "snapshot"
    description = "snapshotting source"
    descriptionDone = "source snapshot"

    def __init__(self, project: Project, sources: Path, snapshots: Path, keep: int, **kwargs):
        super().__init__(**kwargs)
        self.project = project
        self.sources = sources
        self.snapshots = snapshots
        self.keep = keep

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        stamp = self.build.getSourceStamp("")
        revision = (stamp.revision if stamp else None) or None
        branch = (stamp.branch if stamp else None) or self.getProperty("branch") or None
        lock = _project_lock(self.project.name)
        yield lock.acquire()
        try:
            snapshot = yield threads.deferToThread(
                make_snapshot, self.project, revision, branch, self.sources, self.snapshots)
            # Keep a few more than the artifacts, so a rebuild finds its tarball.
            yield threads.deferToThread(prune_snapshots, self.snapshots, self.project.name,
                                        self.keep + 5)
        except SnapshotError as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "no source"
            return FAILURE
        finally:
            lock.release()
        yield log.addStdout(snapshot.log + "\n")
        self.setProperty("got_revision", snapshot.revision, "Snapshot")
        self.setProperty("revision_label", snapshot.label, "Snapshot")
        self.setProperty("snapshot", str(snapshot.path), "Snapshot")
        self.descriptionDone = f"source {snapshot.label}"
        return SUCCESS


class Cargo(buildstep.ShellMixin, buildstep.CommandMixin, buildstep.BuildStep):
    """A cargo command; ``--locked`` is added when the project has a Cargo.lock."""

    renderables = ["lockfile"]

    def __init__(self, lockfile: str, **kwargs):
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.lockfile = lockfile

    @defer.inlineCallbacks
    def run(self):
        command = list(self.command)
        if (yield self.pathExists(self.lockfile)):
            command.insert(2, "--locked")
        cmd = yield self.makeRemoteShellCommand(command=command)
        yield self.runCommand(cmd)
        return cmd.results()


class PruneArtifacts(buildstep.BuildStep):
    """On the master: keep the newest ``keep`` revisions of a project's artifacts."""

    name = "prune artifacts"
    descriptionDone = "pruned"

    def __init__(self, project_dir: Path, keep: int, **kwargs):
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.keep = keep

    @defer.inlineCallbacks
    def run(self):
        current = self.getProperty("revision_label")
        removed = yield threads.deferToThread(prune_revisions, self.project_dir, self.keep,
                                              current)
        log = yield self.addLog("stdio")
        yield log.addStdout("".join(f"removed {name}\n" for name in removed) or "nothing to prune\n")
        return results.SUCCESS


def prune_revisions(project_dir: Path, keep: int, current: str | None) -> list[str]:
    if not project_dir.is_dir():
        return []
    revisions = sorted((p for p in project_dir.iterdir() if p.is_dir()),
                       key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in revisions[keep:]:
        if old.name == current:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed
