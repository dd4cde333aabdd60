"""The master's own build steps of a Rust cross build: the source snapshot, and the
artifacts' pruning; and what every step's summary uses. The steps on the worker are
in tool_steps.py (the worker tool's) and cargo_steps.py."""

from __future__ import annotations

from pathlib import Path

from buildbot.process import buildstep, results
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.artifact_store import remove_tree
from rustfarm.farmfile import Project

from .releases import read_release
from .snapshots import GitCommands, SnapshotError, make_snapshot, prune_snapshots

class SaysHowItEnded:
    """A step whose summary says how it ended ("compile failed: 2 errors"): Buildbot's
    " (failure)" after it would repeat it. Other endings (exception, cancelled) keep theirs."""

    def getResultSummary(self):
        summary = super().getResultSummary()
        if self.results == FAILURE and summary.get("step", "").endswith(" (failure)"):
            summary["step"] = summary["step"][:-len(" (failure)")]
        return summary


class SnapshotSource(SaysHowItEnded, buildstep.BuildStep):
    """On the master: fetch the project and make the revision's source tarball.

    One at a time per project, since the project's builders share its git mirror:
    the factory gives the step the project's MasterLock (master/factories.py)."""

    name = "snapshot"
    description = "snapshotting source"
    descriptionDone = "source snapshot"

    def __init__(self, project: Project, sources: Path, snapshots: Path, keep: int, **kwargs):
        super().__init__(**kwargs)
        self.project = project
        self.sources = sources
        self.snapshots = snapshots
        self.keep = keep
        self.git = GitCommands()

    def interrupt(self, reason):
        # A stopped build (or a master shutting down) must not wait for a fetch.
        self.git.stop()
        return super().interrupt(reason)

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        stamp = self.build.getSourceStamp("")
        revision = (stamp.revision if stamp else None) or None
        branch = (stamp.branch if stamp else None) or self.getProperty("branch") or None
        try:
            snapshot = yield threads.deferToThread(
                make_snapshot, self.project, revision, branch, self.sources, self.snapshots,
                self.git)
            # Keep a few more than the artifacts, so a rebuild finds its tarball.
            yield threads.deferToThread(prune_snapshots, self.snapshots, self.project.name,
                                        self.keep + 5)
        except SnapshotError as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "no source"
            return FAILURE
        yield log.addStdout(snapshot.log + "\n")
        self.setProperty("got_revision", snapshot.revision, "Snapshot")
        self.setProperty("revision_label", snapshot.label, "Snapshot")
        self.setProperty("snapshot", str(snapshot.path), "Snapshot")
        self.setProperty("commit_time", snapshot.commit_time, "Snapshot")
        self.descriptionDone = f"source {snapshot.label}"
        return SUCCESS


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size} bytes"


def ui_release_url(release_url: str) -> str | None:
    """The release's page in the web UI (the Releases menu entry, master/www_plugin/) for
    its page ``<url>plugins/artifacts/<project>/<revision>/``; None for another URL."""
    base, found, rest = release_url.partition("plugins/artifacts/")
    if not found or not rest.strip("/"):
        return None
    return f"{base}#/releases/{rest.strip('/')}"


class PruneArtifacts(buildstep.BuildStep):
    """On the master: keep the newest ``keep`` revisions of a project's artifacts, and
    link the build to its revision's release page (the plain page and the web UI's)."""

    name = "prune artifacts"
    descriptionDone = "pruned"
    renderables = ["release_url"]

    def __init__(self, project_dir, keep: int, release_url=None, **kwargs):
        """``project_dir``: the project's place in the store, or a function giving it
        (a bucket's client is made when first needed)."""
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.keep = keep
        self.release_url = release_url

    @defer.inlineCallbacks
    def run(self):
        current = self.getProperty("revision_label")
        if self.release_url:
            yield self.addURL(f"release {current} (every target)", self.release_url)
            ui_url = ui_release_url(self.release_url)
            if ui_url:
                yield self.addURL(f"release {current} in the web UI", ui_url)
        place = self.project_dir() if callable(self.project_dir) else self.project_dir
        removed = yield threads.deferToThread(prune_revisions, place, self.keep, current)
        log = yield self.addLog("stdio")
        yield log.addStdout("".join(f"removed {name}\n" for name in removed) or "nothing to prune\n")
        return results.SUCCESS


def prune_revisions(project_dir: Path, keep: int, current: str | None) -> list[str]:
    """Remove all but the ``keep`` newest revisions (by when they were first built;
    downloading a release's archive of all targets does not make it newer)."""
    if not project_dir.is_dir():
        return []

    def first_built(path: Path) -> float:
        release = read_release(project_dir, path.name)
        return release.first_built if release and release.archives else path.stat().st_mtime

    # A pull request's builds (pr-<number>/) go when it closes.
    revisions = sorted((p for p in project_dir.iterdir()
                        if p.is_dir() and not p.name.startswith("pr-")),
                       key=first_built, reverse=True)
    removed = []
    for old in revisions[keep:]:
        if old.name == current:
            continue
        remove_tree(old)
        removed.append(old.name)
    return removed
