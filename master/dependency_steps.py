"""The dependencies step: the build's crates from registries and git, fetched on the
farm's machine into its crate store (rustfarm/dependencies.py), and the build's view
of the store made on the worker by the worker tool. Its summary says what it used:
"84 crates, 0 downloaded (0.1 s)".

A worker that cannot see the store (a remote Docker engine's, an EC2 instance's) keeps
its own copies of the entries in a directory that outlives the build: the tool checks
them against the digests of the store's listings, and the master sends, over the
worker's connection, only the entries it lacks ("84 crates, 0 downloaded, 0 sent").
An EC2 instance of a pool with a compile cache first takes what it lacks from the
pool's bucket, where instances put what the master sent them ("84 crates, 0
downloaded, 0 sent, 84 from the pool's bucket").
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from buildbot.process import remotecommand, remotetransfer
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.cargo_lock import store_config, toml_text
from rustfarm.crate_store import CrateStore
from rustfarm.dependencies import CargoSettings, DependencyError, fetch_dependencies
from rustfarm.progress import plural

from .staged_uploads import store_refusal
from .steps import human_size
from .tool_steps import TRANSFER_BLOCK, WorkerToolStep

# Where the entries the master sends land in the worker's build directory.
SENT_CRATES = "crates.tar.gz"


class Dependencies(WorkerToolStep):
    """``snapshot`` (the project's files on the master) and its crate in ``crate_dir``;
    the worker sees the store at ``worker_store`` (empty: it cannot, and keeps its own
    copies in ``worker_copies``) and the project at ``source_dir``, and gets its view
    of the store at ``view`` with cargo's configuration for it in ``config_file``."""

    name = "dependencies"
    description = "fetching dependencies"
    renderables = ["snapshot", "crate_dir", "worker_store", "worker_copies", "source_dir",
                   "view", "config_file", "artifact_dir", "artifact_url"]

    def __init__(self, snapshot, crate_dir, store: CrateStore, settings: CargoSettings,
                 worker_store, source_dir, view, config_file, artifact_dir=None,
                 artifact_url=None, upload: bool = False, worker_copies=None,
                 pool_crates: dict | None = None, **kwargs):
        super().__init__(arguments=["dependencies"], **kwargs)
        self.upload = upload
        self.artifact_dir = artifact_dir
        self.artifact_url = artifact_url
        self.snapshot = snapshot
        self.crate_dir = crate_dir
        self.store = store
        self.settings = settings
        self.worker_store = worker_store
        self.worker_copies = worker_copies
        self.pool_crates = pool_crates   # {"bucket", "prefix"}: an EC2 pool's shared copies
        self.sent = 0               # entries sent to a worker with its own copies
        self.from_pool = 0          # entries it took from its pool's bucket
        self.altered_on_worker = []  # its copies found altered (removed, sent again)
        self.answer = {}
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
        yield log.addStdout(self.report(fetched, self.store.keep_days))
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
        if self.worker_store:
            return (yield self.run_tool(["dependencies"], stdin=json.dumps(request)))
        return (yield self.with_own_copies(request, fetched.packages))

    @defer.inlineCallbacks
    def with_own_copies(self, request: dict, packages):
        """The view of the worker's own copies; the entries it lacks sent first."""
        if not self.worker_copies:
            self.descriptionDone = "this worker sees no crate store and keeps no copies"
            return FAILURE
        request["store"] = self.worker_copies
        request["keep_days"] = self.store.keep_days
        request["pool_crates"] = self.pool_crates
        request["listings"] = yield threads.deferToThread(
            lambda: {p.store_key: self.store.listing_digest(p) for p in packages})
        result = yield self.run_tool(["dependencies"], stdin=json.dumps(request))
        missing = set(self.answer.get("missing") or ())
        if result != SUCCESS or not missing:
            return result
        wanted = [p for p in packages if p.store_key in missing]
        archive = yield threads.deferToThread(self.packed, wanted)
        try:
            download = remotecommand.RemoteCommand("downloadFile", {
                "reader": remotetransfer.FileReader(open(archive, "rb")),
                "workerdest": SENT_CRATES, "workdir": self.workdir, "maxsize": None,
                "blocksize": TRANSFER_BLOCK, "mode": 0o600})
            yield self.runCommand(download)
        finally:
            os.remove(archive)
        if download.didFail():
            self.descriptionDone = "could not send the build's crates to the worker"
            return FAILURE
        self.sent = len(wanted)
        return (yield self.run_tool(["dependencies"], stdin=json.dumps(
            {**request, "received": SENT_CRATES})))

    def packed(self, packages) -> str:
        """The entries in a tar on the master (removed once sent)."""
        handle, path = tempfile.mkstemp(prefix="rustfarm-crates-", suffix=".tar.gz")
        os.close(handle)
        self.store.pack(packages, Path(path))
        return path

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
    def report(fetched, keep_days: int) -> str:
        lines = [f"{plural(len(fetched.packages), 'crate')} from registries and git, "
                 f"{len(fetched.downloaded)} downloaded",
                 f"resolved in {fetched.resolve_seconds:.2f} s, "
                 f"fetched in {fetched.fetch_seconds:.2f} s"]
        if fetched.resolved_lock is not None:
            lines.append(f"the project has no Cargo.lock: the farm resolved {fetched.lock_path}"
                         " (its log and the build's artifacts keep it)")
        lines += [f"altered in the store, fetched again: {a}" for a in fetched.altered]
        lines += [f"downloaded: {p}" for p in fetched.downloaded]
        if fetched.pruned.keys:
            lines.append(f"removed from the store, used by no build for {keep_days} days: "
                         f"{plural(len(fetched.pruned.keys), 'package')} "
                         f"({human_size(fetched.pruned.size)})")
            lines += [f"removed: {key}" for key in fetched.pruned.keys]
        return "\n".join(lines + fetched.log) + "\n"

    def outcome(self, failed, answer):
        self.answer = answer
        self.altered_on_worker += answer.get("altered") or []
        self.from_pool += answer.get("from_pool") or 0
        fetched = self.fetched
        if failed or fetched is None:
            self.descriptionDone = "could not give the build its crates"
            return FAILURE
        took = fetched.resolve_seconds + fetched.fetch_seconds
        facts = {"crates": len(fetched.packages), "downloaded": len(fetched.downloaded),
                 "resolved_lock": fetched.resolved_lock is not None,
                 "seconds": round(took, 2)}
        sent = ""
        if not self.worker_store:
            # The worker keeps its own copies: how many the master sent it.
            facts["sent"] = self.sent
            facts["altered_on_worker"] = len(self.altered_on_worker)
            sent = f", {self.sent} sent"
            if self.pool_crates:
                facts["from_pool"] = self.from_pool
                sent += f", {self.from_pool} from the pool's bucket"
        self.setProperty("dependencies", facts, "Dependencies")
        self.descriptionDone = (f"{plural(len(fetched.packages), 'crate')}, "
                                f"{len(fetched.downloaded)} downloaded{sent} ({took:.1f} s)"
                                + (", Cargo.lock resolved" if fetched.resolved_lock else ""))
        return SUCCESS


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
