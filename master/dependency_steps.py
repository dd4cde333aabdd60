"""The dependencies step: the build's crates from registries and git, fetched on the
farm's machine into its crate store (rustfarm/dependencies.py), and the build's view
of the store made on the worker by the worker tool. Its summary says what it used:
"84 crates, 0 downloaded (0.1 s)".
"""

from __future__ import annotations

import json
from pathlib import Path

from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.cargo_lock import store_config, toml_text
from rustfarm.crate_store import CrateStore
from rustfarm.dependencies import CargoSettings, DependencyError, fetch_dependencies
from rustfarm.progress import plural

from .staged_uploads import store_refusal
from .tool_steps import WorkerToolStep


class Dependencies(WorkerToolStep):
    """``snapshot`` (the project's files on the master) and its crate in ``crate_dir``;
    the worker sees the store at ``worker_store`` and the project at ``source_dir``,
    and gets its view of the store at ``view`` with cargo's configuration for it in
    ``config_file``."""

    name = "dependencies"
    description = "fetching dependencies"
    renderables = ["snapshot", "crate_dir", "source_dir", "view", "config_file",
                   "artifact_dir", "artifact_url"]

    def __init__(self, snapshot, crate_dir, store: CrateStore, settings: CargoSettings,
                 worker_store: str, source_dir, view, config_file, artifact_dir=None,
                 artifact_url=None, upload: bool = False, **kwargs):
        super().__init__(arguments=["dependencies"], **kwargs)
        self.upload = upload
        self.artifact_dir = artifact_dir
        self.artifact_url = artifact_url
        self.snapshot = snapshot
        self.crate_dir = crate_dir
        self.store = store
        self.settings = settings
        self.worker_store = worker_store
        self.source_dir = source_dir
        self.view = view
        self.config_file = config_file
        self.fetched = None

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("fetch")
        try:
            fetched = yield threads.deferToThread(
                fetch_dependencies, Path(self.snapshot), self.crate_dir or "", self.store,
                self.settings, self.upload)
        except DependencyError as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "could not fetch the dependencies"
            return FAILURE
        self.fetched = fetched
        yield log.addStdout(self.report(fetched))
        try:
            yield self.keep_lock(fetched)
        except OSError as err:
            reason = store_refusal(err, Path(self.artifact_dir))
            yield log.addStderr(f"{reason}: the Cargo.lock the build uses was not stored\n")
            self.descriptionDone = reason
            return FAILURE
        request = {
            "store": self.worker_store, "view": self.view,
            "entries": {f"{p.name}-{p.version}": p.store_key for p in fetched.packages},
            "config": toml_text(store_config(fetched.packages, self.view, {
                r.name: r.index for r in self.settings.registries})),
            "config_file": self.config_file,
            "lock": None if fetched.resolved_lock is None else {
                "path": f"{self.source_dir}/{fetched.lock_path}",
                "text": fetched.resolved_lock}}
        return (yield self.run_tool(["dependencies"], stdin=json.dumps(request)))

    @defer.inlineCallbacks
    def keep_lock(self, fetched):
        """The lock the build uses beside its archive (its provenance and SBOM name it),
        so the build can be repeated; one the farm resolved also as a log."""
        resolved = fetched.resolved_lock is not None
        if resolved:
            yield self.addCompleteLog("Cargo.lock", fetched.resolved_lock)
        if self.artifact_dir and fetched.lock_text:
            path = Path(self.artifact_dir) / "Cargo.lock"
            yield threads.deferToThread(write_text, path, fetched.lock_text)
            if self.artifact_url and resolved:
                yield self.addURL("Cargo.lock (resolved)", self.artifact_url + "Cargo.lock")

    @staticmethod
    def report(fetched) -> str:
        lines = [f"{plural(len(fetched.packages), 'crate')} from registries and git, "
                 f"{len(fetched.downloaded)} downloaded",
                 f"resolved in {fetched.resolve_seconds:.2f} s, "
                 f"fetched in {fetched.fetch_seconds:.2f} s"]
        if fetched.resolved_lock is not None:
            lines.append(f"the project has no Cargo.lock: the farm resolved {fetched.lock_path}"
                         " (its log and the build's artifacts keep it)")
        lines += [f"altered in the store, fetched again: {a}" for a in fetched.altered]
        lines += [f"downloaded: {p}" for p in fetched.downloaded]
        return "\n".join(lines + fetched.log) + "\n"

    def outcome(self, failed, answer):
        fetched = self.fetched
        if failed or fetched is None:
            self.descriptionDone = "could not give the build its crates"
            return FAILURE
        took = fetched.resolve_seconds + fetched.fetch_seconds
        self.setProperty("dependencies", {
            "crates": len(fetched.packages), "downloaded": len(fetched.downloaded),
            "resolved_lock": fetched.resolved_lock is not None,
            "seconds": round(took, 2)}, "Dependencies")
        self.descriptionDone = (f"{plural(len(fetched.packages), 'crate')}, "
                                f"{len(fetched.downloaded)} downloaded ({took:.1f} s)"
                                + (", Cargo.lock resolved" if fetched.resolved_lock else ""))
        return SUCCESS


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
