"""The steps that run the worker tool (rustfarm/worker_tool): fetch source,
toolchain, compile cache and package. Each reads the tool's one JSON answer
(worker_tool/protocol.py) and says in its summary what it did ("unpacked 3 changed
files", "Rust 1.96.0", "crate cache", "packaged hello (412 KB)").

A worker runs its own copy of the tool where it has this version (the target images
carry it, local workers have the farm's); to any other worker the master sends its
copy once per build, into the build's directory.
"""

from __future__ import annotations

import base64
from pathlib import Path

from buildbot.process import buildstep, logobserver, remotecommand, remotetransfer
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.cargo_lock import package_id_name_version
from rustfarm.worker_tool_file import INFO_KEY, tool_bytes, tool_digest
from rustfarm.worker_tool.protocol import ProtocolError, read_answer
from rustfarm.progress import plural

from .staged_uploads import DamagedTransfer, StagedFileWriter, store_refusal
from .steps import SaysHowItEnded, human_size

# Blocks of a file moved between master and worker: each one is a round trip, and
# Perspective Broker refuses a string over 640 KB.
TRANSFER_BLOCK = 512 * 1024
# Where the source tarball lands in the worker's build directory.
TARBALL = "source.tar.gz"
# The largest tarball sent with the unpack command itself: base64 makes it TRANSFER_BLOCK.
INLINE_SNAPSHOT = TRANSFER_BLOCK * 3 // 4


class WorkerTool:
    """The farm's worker tool: its bytes, and the digest by which a worker's info says
    it has a copy of this very version."""

    def __init__(self, data: bytes | None = None):
        self.data = tool_bytes() if data is None else data
        self.digest = tool_digest(self.data)

    def __repr__(self) -> str:
        return f"<worker tool {self.digest[:12]}>"

    def copy_on(self, worker_info) -> str | None:
        """The path of the worker's own copy of this version, if it has one."""
        advertised = str(worker_info.getProperty(INFO_KEY) or "").split()
        if len(advertised) == 2 and advertised[0] == self.digest:
            return advertised[1]
        return None

    @property
    def sent_name(self) -> str:
        """The name of the copy the master sends, in the step's directory."""
        return f".rustfarm-tool-{self.digest[:16]}.pyz"


class ToolNotSent(Exception):
    pass


class UsesWorkerTool:
    """For a step that runs the worker tool (``self.tool``, a WorkerTool)."""

    tool: WorkerTool

    def tool_in_place(self) -> str | None:
        return self.tool.copy_on(self.build.getWorkerInfo())

    @defer.inlineCallbacks
    def worker_tool_path(self):
        """Where the worker has this version of the tool: its own copy, or the master's,
        sent into the step's directory by the build's first step that needs it."""
        in_place = self.tool_in_place()
        if in_place:
            return in_place
        sent = getattr(self.build, "sent_worker_tool", None)
        if sent:
            return sent
        download = remotecommand.RemoteCommand("downloadFile", {
            "reader": remotetransfer.StringFileReader(self.tool.data),
            "workerdest": self.tool.sent_name, "workdir": self.workdir, "maxsize": None,
            "blocksize": TRANSFER_BLOCK, "mode": 0o644})
        yield self.runCommand(download)
        if download.didFail():
            raise ToolNotSent(f"could not send the worker tool to {self.build.workername}")
        path = self.build.path_module.join(self.getProperty("builddir"), self.workdir,
                                           self.tool.sent_name)
        self.build.sent_worker_tool = path
        return path


def tool_answer(stdout: str) -> dict:
    """The worker tool's answer as a step's log holds it: one line of JSON, which
    Buildbot's log splits every 4,096 characters (a release's list of linked crates is
    longer); joined again, as the JSON itself holds no line break."""
    return read_answer("".join(stdout.splitlines()))


class WorkerToolStep(UsesWorkerTool, SaysHowItEnded, buildstep.ShellMixin,
                     buildstep.BuildStep):
    """A command of the worker tool, whose answer makes the step's result: subclasses
    read it in ``outcome`` (``answer`` is the tool's result, None when it printed
    none) and return the step's result."""

    def __init__(self, tool: WorkerTool, arguments: list, **kwargs):
        kwargs = self.setupShellMixin({**kwargs, "command": arguments})
        super().__init__(**kwargs)
        self.tool = tool
        self.output = logobserver.BufferLogObserver(wantStdout=True, wantStderr=False)
        self.addLogObserver("stdio", self.output)

    def run(self):
        return self.run_tool(self.command)

    @defer.inlineCallbacks
    def run_tool(self, arguments: list, stdin: str | None = None):
        """The tool with ``arguments`` (rendered) and ``stdin``; the step's result."""
        try:
            path = yield self.worker_tool_path()
        except ToolNotSent as err:
            self.descriptionDone = str(err)
            return FAILURE
        self.setProperty("worker_tool", path, "Worker")
        self.command, self.initialStdin = ["python3", path, *arguments], stdin
        # A step may run the tool more than once: this command's answer is what follows
        # the last one's.
        before = len(self.output.getStdout())
        cmd = yield self.makeRemoteShellCommand()
        yield self.runCommand(cmd)
        try:
            answer = tool_answer(self.output.getStdout()[before:])
        except ProtocolError as err:
            yield self.addCompleteLog("worker tool", f"{err}\n")
            answer = None
        return self.outcome(cmd.didFail() or answer is None or "error" in answer, answer or {})

    def outcome(self, failed: bool, answer: dict) -> int:
        raise NotImplementedError


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

    def outcome(self, failed, answer):
        if failed:
            self.descriptionDone = "unpack failed"
            return FAILURE
        written, removed = answer.get("written", 0), answer.get("removed", 0)
        if not written and not removed:
            self.descriptionDone = "source unchanged"
        else:
            self.descriptionDone = f"unpacked {plural(written, 'changed file')}" + (
                f", {removed} removed" if removed else "")
        return SUCCESS


class ToolchainCheck(WorkerToolStep):
    """On the worker: which Rust builds this (the ``toolchain`` property and the
    summary), failing at once when the crate needs a newer one."""

    name = "toolchain"
    description = "checking the toolchain"

    def outcome(self, failed, answer):
        release = answer.get("release")
        if release:
            self.setProperty("toolchain", release, "Worker")
        if failed:
            self.descriptionDone = (f"needs {answer['needs']}, has Rust {release}"
                                    if answer.get("needs") and release else "wrong toolchain")
            return FAILURE
        self.descriptionDone = f"Rust {release}"
        return SUCCESS


class CompileCacheSetup(WorkerToolStep):
    """The build's shared compile cache, where its pool has one: the cargo steps'
    RUSTC_WRAPPER (the ``rustc_wrapper`` property, empty where the worker has no cache)
    and the compiler it names (``compiler_identity``)."""

    name = "compile cache"
    description = "setting up the compile cache"

    def __init__(self, **kwargs):
        super().__init__(arguments=["compile-cache", "setup"], **kwargs)

    def outcome(self, failed, answer):
        kind = answer.get("kind") if not failed else None
        self.setProperty("rustc_wrapper", answer.get("wrapper", "") if kind else "", "Worker")
        self.setProperty("compiler_identity", answer.get("compiler", "") if kind else "",
                         "Worker")
        if failed:
            self.descriptionDone = "failed; building without the cache"
            return SUCCESS
        self.descriptionDone = {"crates": "crate cache", None: "none on this worker"}.get(
            kind, f"{kind} {answer.get('version', '')}".strip())
        return SUCCESS


class Package(WorkerToolStep):
    """The shipped binaries into the archive on the worker, uploaded to ``destination``
    on the master, where its SHA256SUMS is written from the digest of what arrived
    (checked against the worker's: a damaged transfer fails the step), in one step; the
    summary and the ``binary_sizes`` property give each binary's size. With ``url``, the
    step links the archive and its checksums. An archive the store has no room for is
    not stored, and the step says so (staged_uploads.py)."""

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
        try:
            writer = StagedFileWriter(str(archive), None, 0o644)
        except OSError as err:
            return (yield self.refused(err, archive))
        upload = remotecommand.RemoteCommand("uploadFile", {
            "workersrc": self.archive, "workdir": self.workdir, "maxsize": None,
            "blocksize": TRANSFER_BLOCK, "keepstamp": False, "writer": writer})
        try:
            yield self.runCommand(upload)
        finally:
            if writer.error is not None or upload.didFail():
                writer.discard()
        if writer.error is not None:
            return (yield self.refused(writer.error, archive))
        if upload.didFail():
            self.descriptionDone = f"upload of {self.archive} failed"
            return FAILURE
        try:
            yield threads.deferToThread(writer.put_in_place, self.packed_digest)
        except DamagedTransfer as err:
            self.descriptionDone = str(err)
            return FAILURE
        except OSError as err:
            return (yield self.refused(err, archive))
        if self.url:
            for name in (self.archive, "SHA256SUMS"):
                yield self.addURL(name, self.url + name)
        return SUCCESS

    @defer.inlineCallbacks
    def refused(self, err: OSError, archive: Path):
        """The store refused the archive: the release keeps the files it had."""
        reason = store_refusal(err, archive.parent)
        log = yield self.addLog("store")
        yield log.addStderr(f"{reason}: {self.archive} was not stored; the release keeps "
                            "the files it had\n")
        self.descriptionDone = reason
        return FAILURE

    def outcome(self, failed, answer):
        if failed:
            self.descriptionDone = "no binaries to package"
            return FAILURE
        sizes = {b["name"]: int(b["size"]) for b in answer.get("binaries", [])}
        self.packed_digest = answer.get("sha256")
        self.setProperty("binary_sizes", sizes, "Package")
        self.setProperty("archive_sha256", self.packed_digest, "Package")
        self.setProperty("package_archive", answer.get("archive", ""), "Package")
        self.setProperty("binary_digests", {b["name"]: b.get("sha256", "")
                                            for b in answer.get("binaries", [])}, "Package")
        self.setProperty("crate_about", answer.get("crate", {}), "Package")
        # What cargo compiled for the target (NAME@VERSION): the crates in the binaries.
        self.setProperty("linked_crates", sorted(
            f"{name}@{version}" for name, version in
            filter(None, map(package_id_name_version, answer.get("linked", [])))), "Package")
        self.descriptionDone = "packaged " + ", ".join(
            f"{name} ({human_size(size)})" for name, size in sorted(sizes.items()))
        return SUCCESS
