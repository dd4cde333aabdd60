"""Build steps of a Rust cross build: snapshot, fetch source, toolchain, cargo,
package (and upload), prune. Each one's summary says what it did ("unpacked 3 changed files",
"compiled in 12 s", "packaged hello (412 KB)")."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from buildbot.process import buildstep, logobserver, remotecommand, remotetransfer, results
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.failures import ERROR_START, SUMMARY
from rustfarm.farmfile import Project
from rustfarm.names import is_upload_build
from rustfarm.workers.tool import INFO_KEY

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
        self.descriptionDone = f"source {snapshot.label}"
        return SUCCESS


# Where the kernel counts the container's processes killed for memory: cgroup v2's
# memory events, or cgroup v1's memory controller; both say "oom_kill N".
MEMORY_EVENTS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


class CargoOutput(logobserver.LogLineObserver):
    """Counts what cargo's output reports: compiler errors, tests passed and failed."""

    def __init__(self):
        super().__init__()
        self.errors = 0
        self.passed = 0
        self.failed = 0

    def outLineReceived(self, line):
        self.line(line)

    def errLineReceived(self, line):
        self.line(line)

    def line(self, line: str) -> None:
        if ERROR_START.match(line) and not SUMMARY.match(line):
            self.errors += 1
        result = TEST_COUNTS.match(line)
        if result:
            self.passed += int(result.group(1))
            self.failed += int(result.group(2))


TEST_COUNTS = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class CompileCacheStats:
    """What the shared compile cache did for a build's rustc calls (the worker tool's
    crate cache on a docker pool, sccache on S3 for an EC2 pool): crates from the
    cache (hits), compiled (misses: stored, unless the cache is read-only for the
    build), compiled and never cached (build scripts, proc-macros, crates with native
    libraries), and cache errors (a read-only cache's refused writes are not errors);
    the crate cache names the crates too."""

    hits: int
    misses: int
    not_cacheable: int
    errors: int
    location: str
    read_only: bool = False
    from_cache: tuple[str, ...] = ()
    compiled: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, read_only: bool = False) -> "CompileCacheStats | None":
        try:
            found = json.loads(text)
            if "crate_cache" in found:
                return cls(hits=int(found["hits"]), misses=int(found["misses"]),
                           not_cacheable=int(found["not_cacheable"]),
                           errors=int(found["errors"]), location=str(found["crate_cache"]),
                           read_only=read_only, from_cache=tuple(found["from_cache"]),
                           compiled=tuple(found["compiled"]))
            stats = found["stats"]
            write_errors = 0 if read_only else stats["cache_write_errors"]
            return cls(hits=sum(stats["cache_hits"]["counts"].values()),
                       misses=sum(stats["cache_misses"]["counts"].values()),
                       # Calls with no input (cargo's "rustc -vV")
                       # are no compilations.
                       not_cacheable=stats["requests_not_cacheable"]
                       - stats.get("not_cached", {}).get("missing input", 0)
                       + stats["non_cacheable_compilations"],
                       errors=stats["cache_read_errors"] + write_errors
                       + sum(stats["cache_errors"]["counts"].values()),
                       location=found.get("cache_location", ""), read_only=read_only)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def describe(self) -> str:
        return f"{plural(self.hits, 'crate')} from the cache, {self.misses} compiled"

    def as_property(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "not_cacheable": self.not_cacheable,
                "errors": self.errors, "read_only": self.read_only}

    def report(self) -> str:
        stored = "not stored: read-only for this build" if self.read_only else "and stored"
        names = "".join(f"{label:<35}{' '.join(crates)}\n" for label, crates in
                        (("from the cache:", self.from_cache), ("compiled:", self.compiled))
                        if crates)
        return (f"shared compile cache: {self.location}\n"
                f"crates from the cache (hits):      {self.hits}\n"
                f"crates compiled (misses):          {self.misses} ({stored})\n"
                f"compiled, not cacheable:           {self.not_cacheable}\n"
                f"cache errors:                      {self.errors}\n" + names)


class Cargo(SaysHowItEnded, buildstep.ShellMixin, buildstep.CommandMixin, buildstep.BuildStep):
    """A cargo command; ``--locked`` is added when the project has a Cargo.lock.

    Its summary says what happened: "compiled in 12 s", "compile failed: 2 errors",
    "42 tests passed", "1 of 42 tests failed". In a container with a memory limit,
    a failure after which the kernel killed a process for memory says so, naming
    the limit.
    """

    renderables = ["lockfile"]

    def __init__(self, lockfile: str, memory_limit: str | None = None, **kwargs):
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.lockfile = lockfile
        self.memory_limit = memory_limit
        self.output = CargoOutput()
        self.addLogObserver("stdio", self.output)

    @defer.inlineCallbacks
    def run(self):
        command = list(self.command)
        if (yield self.pathExists(self.lockfile)):
            command.insert(2, "--locked")
        started = self.master.reactor.seconds()
        cmd = yield self.makeRemoteShellCommand(command=command)
        yield self.runCommand(cmd)
        took = self.master.reactor.seconds() - started
        self.descriptionDone = self.summary(command[1], cmd.didFail(), took)
        if self.getProperty("rustc_wrapper"):
            cached = yield self.compile_cache_stats()
            if cached is not None and command[1] == "build":
                self.descriptionDone += f" ({cached.describe()})"
        if cmd.didFail() and self.memory_limit and (yield self.killed_for_memory()):
            message = f"killed: exceeded the pool's memory limit of {self.memory_limit}"
            yield self.addCompleteLog("memory", message + "\n")
            self.descriptionDone = message
        return cmd.results()

    def summary(self, subcommand: str, failed: bool, took: float) -> str:
        out = self.output
        if subcommand == "test":
            if out.failed:
                return f"{out.failed} of {plural(out.passed + out.failed, 'test')} failed"
            if failed and out.errors:
                return f"test build failed: {plural(out.errors, 'error')}"
            if failed:
                return "tests failed"
            return f"{plural(out.passed, 'test')} passed"
        if failed:
            return f"compile failed: {plural(out.errors, 'error')}" if out.errors \
                else "compile failed"
        return f"compiled in {took:.0f} s"

    @defer.inlineCallbacks
    def compile_cache_stats(self):
        """The compile cache's counts for this build so far (the crate cache's, or
        sccache's, whose server lives as long as the build's container): the
        ``compile_cache`` property and a log of their own."""
        stats = remotecommand.RemoteShellCommand(
            self.workdir, [self.getProperty("rustc_wrapper"), "--show-stats",
                           "--stats-format", "json"],
            env=self.env, collectStdout=True, logEnviron=False)
        yield self.runCommand(stats)
        # An upload's build reads the cache and may not add to it.
        read_only = is_upload_build(self)
        counts = CompileCacheStats.parse(stats.stdout, read_only) if not stats.didFail() \
            else None
        if counts is None:
            return None
        self.setProperty("compile_cache", counts.as_property(), "Cargo")
        yield self.addCompleteLog("compile cache", counts.report())
        return counts

    @defer.inlineCallbacks
    def killed_for_memory(self):
        """Whether the kernel killed a process of this container for memory."""
        for path in MEMORY_EVENTS:
            events = remotetransfer.StringFileWriter()
            cmd = remotecommand.RemoteCommand("uploadFile", {
                "workersrc": path, "workdir": self.workdir, "writer": events,
                "maxsize": 65536, "blocksize": 32768})
            yield self.runCommand(cmd)
            if cmd.didFail():
                continue
            found = re.search(r"^oom_kill (\d+)$", events.buffer, re.MULTILINE)
            return bool(found and int(found.group(1)) > 0)
        return False


class WorkerTool:
    """The worker tool (rustfarm.workers.tool): its source, and the digest by which a
    worker's info says it has a copy of this very version."""

    def __init__(self, source: bytes):
        # A plain str: Perspective Broker sends no subclass of it.
        self.source = source.decode()
        self.digest = hashlib.sha256(source).hexdigest()

    def __repr__(self) -> str:
        return "<farm_worker_tool.py>"

    def copy_on(self, worker_info) -> str | None:
        """The path of the worker's own copy of this version, if it has one."""
        advertised = str(worker_info.getProperty(INFO_KEY) or "").split()
        if len(advertised) == 2 and advertised[0] == self.digest:
            return advertised[1]
        return None


class WorkerToolStep(SaysHowItEnded, buildstep.ShellMixin, buildstep.BuildStep):
    """A command of the worker tool whose output makes the step's summary: subclasses
    read it in ``outcome`` and return the step's result.

    The worker runs its own copy of the tool where it has this version (the target
    images carry it); to any other worker the tool's source goes on the command's
    standard input (``python3 - COMMAND ...``), in the same message as the command."""

    def __init__(self, tool: WorkerTool, arguments: list, **kwargs):
        kwargs = self.setupShellMixin({**kwargs, "command": arguments})
        super().__init__(**kwargs)
        self.tool = tool
        self.output = logobserver.BufferLogObserver(wantStdout=True, wantStderr=True)
        self.addLogObserver("stdio", self.output)

    def tool_in_place(self) -> str | None:
        return self.tool.copy_on(self.build.getWorkerInfo())

    def run(self):
        return self.run_tool(self.command)

    @defer.inlineCallbacks
    def run_tool(self, arguments: list, stdin: str | None = None):
        """The tool with ``arguments`` (rendered); ``stdin`` only for a worker's own copy."""
        in_place = self.tool_in_place()
        if in_place:
            self.command, self.initialStdin = ["python3", in_place, *arguments], stdin
        else:
            self.command, self.initialStdin = ["python3", "-", *arguments], self.tool.source
        cmd = yield self.makeRemoteShellCommand()
        yield self.runCommand(cmd)
        return self.outcome(cmd.didFail(), self.output.getStdout(), self.output.getStderr())

    def outcome(self, failed: bool, stdout: str, stderr: str) -> int:
        raise NotImplementedError


# Blocks of a file moved between master and worker: each one is a round trip, and
# Perspective Broker refuses a string over 640 KB.
TRANSFER_BLOCK = 512 * 1024
# Where the source tarball lands in the worker's build directory.
TARBALL = "source.tar.gz"
# The largest tarball sent with the unpack command itself: base64 makes it TRANSFER_BLOCK.
INLINE_SNAPSHOT = TRANSFER_BLOCK * 3 // 4

class ToolchainCheck(WorkerToolStep):
    """On the worker: which Rust builds this (the ``toolchain`` property and the
    summary), failing at once when the crate needs a newer one."""

    name = "toolchain"
    description = "checking the toolchain"

    def outcome(self, failed, stdout, stderr):
        found = re.search(r"^toolchain: (\S+)$", stdout, re.MULTILINE)
        if found:
            self.setProperty("toolchain", found.group(1), "Worker")
        if failed:
            problem = re.search(r"needs (Rust [\d.]+ or newer|a newer Rust)", stderr)
            self.descriptionDone = (f"{problem.group(0)}, has Rust {found.group(1)}"
                                    if problem and found else "wrong toolchain")
            return FAILURE
        self.descriptionDone = f"Rust {found.group(1)}" if found else "toolchain"
        cache = re.search(r"^compile cache: (\S+) (\S+) ", stdout, re.MULTILINE)
        # The cargo steps' RUSTC_WRAPPER: empty (none) where the worker has no cache.
        self.setProperty("rustc_wrapper", cache.group(1) if cache else "", "Worker")
        if cache:
            # The crate cache (a docker pool's) or sccache-VERSION (an EC2 pool's).
            kind = cache.group(2).replace("-", " ")
            self.descriptionDone += ", compile cache" if kind == "crates" else f", {kind}"
        return SUCCESS


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size} bytes"


class FetchSource(WorkerToolStep):
    """The source tarball to the worker and over the build's source directory ``dest``,
    in one step: only changed files are written (so cargo rebuilds only what changed),
    and the summary counts them. To a worker with its own copy of the tool, a tarball of
    up to INLINE_SNAPSHOT goes along with the unpack command, in one round trip; a larger
    one, or to another worker, is downloaded first."""

    name = "fetch source"
    description = "fetching source"
    renderables = ["tarball", "dest"]

    def __init__(self, tarball, dest, **kwargs):
        super().__init__(arguments=["unpack", TARBALL, dest], **kwargs)
        self.tarball = tarball
        self.dest = dest

    @defer.inlineCallbacks
    def run(self):
        try:
            with open(self.tarball, "rb") as source:
                inline = source.read(INLINE_SNAPSHOT + 1)
        except OSError as err:
            yield self.addCompleteLog("stderr", f"no source tarball on the master: {err}\n")
            self.descriptionDone = "no source"
            return FAILURE
        if len(inline) <= INLINE_SNAPSHOT and self.tool_in_place():
            return (yield self.run_tool(["unpack", "-", self.dest],
                                        stdin=base64.b64encode(inline).decode()))
        download = remotecommand.RemoteCommand("downloadFile", {
            "reader": remotetransfer.FileReader(open(self.tarball, "rb")),
            "workerdest": TARBALL, "workdir": self.workdir, "maxsize": None,
            "blocksize": TRANSFER_BLOCK, "mode": None})
        yield self.runCommand(download)
        if download.didFail():
            self.descriptionDone = "source download failed"
            return FAILURE
        return (yield self.run_tool(["unpack", TARBALL, self.dest]))

    def outcome(self, failed, stdout, stderr):
        if failed:
            self.descriptionDone = "unpack failed"
            return FAILURE
        counts = re.search(r"(\d+) written, (\d+) removed", stdout)
        written, removed = (int(n) for n in counts.groups()) if counts else (0, 0)
        if not written and not removed:
            self.descriptionDone = "source unchanged"
        else:
            self.descriptionDone = f"unpacked {plural(written, 'changed file')}" + (
                f", {removed} removed" if removed else "")
        return SUCCESS


class Package(WorkerToolStep):
    """The shipped binaries into the archive on the worker, uploaded to ``destination``
    on the master, where its SHA256SUMS is written from the digest of what arrived
    (checked against the worker's: a damaged transfer fails the step), in one step; the
    summary and the ``binary_sizes`` property give each binary's size. With ``url``, the
    step links the archive and its checksums."""

    name = "package"
    description = "packaging"
    renderables = ["archive", "destination", "url"]

    def __init__(self, archive, destination, url=None, **kwargs):
        super().__init__(**kwargs)
        self.archive = archive
        self.destination = destination
        self.url = url
        self.packed_digest = None

    @defer.inlineCallbacks
    def run(self):
        packed = yield super().run()
        if packed != SUCCESS:
            return packed
        archive = Path(self.destination) / self.archive
        upload = remotecommand.RemoteCommand("uploadFile", {
            "workersrc": self.archive, "workdir": self.workdir, "maxsize": None,
            "blocksize": TRANSFER_BLOCK, "keepstamp": False,
            "writer": remotetransfer.FileWriter(str(archive), None, 0o644)})
        yield self.runCommand(upload)
        if upload.didFail():
            self.descriptionDone = f"upload of {self.archive} failed"
            return FAILURE
        digest = yield threads.deferToThread(write_checksums, archive)
        if digest != self.packed_digest:
            self.descriptionDone = f"{self.archive} arrived damaged (its SHA-256 differs)"
            return FAILURE
        if self.url:
            for name in (self.archive, "SHA256SUMS"):
                yield self.addURL(name, self.url + name)
        return SUCCESS

    def outcome(self, failed, stdout, stderr):
        sizes = {name: int(size) for name, size in
                 re.findall(r"^packed (\S+) \((\d+) bytes\)$", stdout, re.MULTILINE)}
        if failed:
            self.descriptionDone = "no binaries to package"
            return FAILURE
        digest = re.search(rf"^([0-9a-f]{{64}})  {re.escape(self.archive)}$", stdout,
                           re.MULTILINE)
        self.packed_digest = digest.group(1) if digest else None
        self.setProperty("binary_sizes", sizes, "Package")
        self.descriptionDone = "packaged " + ", ".join(
            f"{name} ({human_size(size)})" for name, size in sorted(sizes.items()))
        return SUCCESS


def write_checksums(archive: Path) -> str:
    """SHA256SUMS beside ``archive``, for it alone; returns its digest."""
    digest = hashlib.sha256()
    with archive.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    (archive.parent / "SHA256SUMS").write_text(f"{digest.hexdigest()}  {archive.name}\n")
    return digest.hexdigest()


class PruneArtifacts(buildstep.BuildStep):
    """On the master: keep the newest ``keep`` revisions of a project's artifacts, and
    link the build to its revision's release page."""

    name = "prune artifacts"
    descriptionDone = "pruned"
    renderables = ["release_url"]

    def __init__(self, project_dir: Path, keep: int, release_url=None, **kwargs):
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.keep = keep
        self.release_url = release_url

    @defer.inlineCallbacks
    def run(self):
        current = self.getProperty("revision_label")
        if self.release_url:
            yield self.addURL(f"release {current} (every target)", self.release_url)
        removed = yield threads.deferToThread(prune_revisions, self.project_dir, self.keep,
                                              current)
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

    revisions = sorted((p for p in project_dir.iterdir() if p.is_dir()),
                       key=first_built, reverse=True)
    removed = []
    for old in revisions[keep:]:
        if old.name == current:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed
