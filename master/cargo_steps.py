"""The cargo steps: a build or a test with cargo, whose summary says what happened
("compiled in 12 s", "compile failed: 2 errors", "1 of 42 tests failed"), with the
shared compile cache's counts where the build has one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildbot.process import buildstep, logobserver, remotecommand, remotetransfer
from twisted.internet import defer

from rustfarm.failures import ERROR_START, SUMMARY
from rustfarm.worker_tool.protocol import ProtocolError, read_answer
from rustfarm.progress import plural

from .steps import SaysHowItEnded
from .tool_steps import ToolNotSent, UsesWorkerTool, WorkerTool

# Where the kernel counts the container's processes killed for memory: cgroup v2's
# memory events, or cgroup v1's memory controller; both say "oom_kill N".
MEMORY_EVENTS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


class CargoOutput(logobserver.LogLineObserver):
    """Counts what cargo's output reports: compiler errors, tests passed and failed,
    and the crates whose build script failed."""

    def __init__(self):
        super().__init__()
        self.errors = 0
        self.passed = 0
        self.failed = 0
        self.build_scripts: list[str] = []
        # The first error and where it is (rustc's ``-->`` line under it).
        self.first_error: list[str] = []
        self.out_of_space = False

    def outLineReceived(self, line):
        self.line(line)

    def errLineReceived(self, line):
        self.line(line)

    def line(self, line: str) -> None:
        if NO_SPACE in line:
            self.out_of_space = True
        if ERROR_START.match(line) and not SUMMARY.match(line):
            self.errors += 1
            if not self.first_error:
                self.first_error = [line]
        elif len(self.first_error) == 1 and line.lstrip().startswith("--> "):
            self.first_error.append(line)
        script = BUILD_SCRIPT_FAILED.match(line)
        if script:
            self.build_scripts.append(script.group(1))
        result = TEST_COUNTS.match(line)
        if result:
            self.passed += int(result.group(1))
            self.failed += int(result.group(2))


FIRST_ERROR_PROPERTY = "first_error"
# cargo-auditable's subcommand, which runs cargo's own with the dependency list embedded.
AUDITABLE = "auditable"
# ENOSPC as rustc and cargo report it; a linker may just abort, so a failed step whose
# volume has less room than this left says so too.
NO_SPACE = "No space left on device"
NEARLY_FULL = 32 * 1024 * 1024
TEST_COUNTS = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")
BUILD_SCRIPT_FAILED = re.compile(r"^error: failed to run custom build command for `([^`]+)`")


@dataclass(frozen=True)
class CompileCacheStats:
    """What the shared compile cache did for a build's rustc calls, from the worker
    tool's ``compile-cache stats`` (one shape for the crate cache of a docker pool and
    sccache on an EC2 pool's S3): crates from the cache (hits), compiled (misses:
    stored, unless the cache is read-only for the build), compiled and never cached
    (build scripts, proc-macros, crates with native libraries), and cache errors; the
    crate cache names the crates too."""

    hits: int
    misses: int
    not_cacheable: int
    errors: int
    location: str
    read_only: bool = False
    from_cache: tuple[str, ...] = ()
    compiled: tuple[str, ...] = ()

    @classmethod
    def from_answer(cls, found: dict) -> "CompileCacheStats | None":
        try:
            return cls(hits=int(found["hits"]), misses=int(found["misses"]),
                       not_cacheable=int(found["not_cacheable"]), errors=int(found["errors"]),
                       location=str(found.get("location", "")),
                       read_only=bool(found.get("read_only")),
                       from_cache=tuple(found.get("from_cache", ())),
                       compiled=tuple(found.get("compiled", ())))
        except (KeyError, TypeError, ValueError):
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


def cargo_subcommand(command: list[str]) -> str:
    """build or test, in ``cargo [auditable] SUBCOMMAND ...``."""
    return command[2] if command[1] == AUDITABLE else command[1]


class Cargo(UsesWorkerTool, SaysHowItEnded, buildstep.ShellMixin, buildstep.CommandMixin,
            buildstep.BuildStep):
    """A cargo command; ``--locked`` is added when the project has a Cargo.lock.

    Its summary says what happened: "compiled in 12 s", "compile failed: 2 errors",
    "42 tests passed", "1 of 42 tests failed". In a container with a memory limit,
    a failure after which the kernel killed a process for memory says so, naming
    the limit.
    """

    renderables = ["lockfile"]

    def __init__(self, lockfile: str, tool: WorkerTool, memory_limit: str | None = None,
                 triple: str = "", c_compiler: bool = True, **kwargs):
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.tool = tool
        self.triple = triple
        self.c_compiler = c_compiler
        self.lockfile = lockfile
        self.memory_limit = memory_limit
        self.output = CargoOutput()
        self.addLogObserver("stdio", self.output)

    @defer.inlineCallbacks
    def run(self):
        command = list(self.command)
        subcommand = cargo_subcommand(command)
        if (yield self.pathExists(self.lockfile)):
            command.insert(command.index(subcommand) + 1, "--locked")
        started = self.master.reactor.seconds()
        cmd = yield self.makeRemoteShellCommand(command=command)
        yield self.runCommand(cmd)
        took = self.master.reactor.seconds() - started
        self.descriptionDone = self.summary(subcommand, cmd.didFail(), took)
        if self.getProperty("rustc_wrapper"):
            cached = yield self.compile_cache_stats()
            if cached is not None and subcommand == "build":
                self.descriptionDone += f" ({cached.describe()})"
        if cmd.didFail() and self.output.first_error:
            # For the pull request's summary comment (master/pull_request_comments.py).
            self.setProperty(FIRST_ERROR_PROPERTY, "\n".join(self.output.first_error)[:500],
                             "Cargo")
        if cmd.didFail():
            free = yield self.free_space()
            if self.output.out_of_space or (free is not None and free < NEARLY_FULL):
                # A full volume is the place's fault, not the code's (a linker that runs
                # out of room may just abort): said first.
                room = f", {free // 1024} KiB free" if free is not None else ""
                self.descriptionDone = (f"{subcommand} failed: no space left on the build's "
                                        f"volume{room} (" + self.descriptionDone + ")")
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
        if failed and out.build_scripts:
            # A crate whose own build (its C code, say) fails for this target: named,
            # rather than the compiler's or the linker's wall of text.
            why = "" if self.c_compiler else f": {self.triple} has no C compiler"
            return f"{out.build_scripts[0]}: its build script failed for {self.triple}{why}"
        if failed:
            return f"compile failed: {plural(out.errors, 'error')}" if out.errors \
                else "compile failed"
        return f"compiled in {took:.0f} s"

    @defer.inlineCallbacks
    def compile_cache_stats(self):
        """The compile cache's counts for this build so far, from the worker tool: the
        ``compile_cache`` property and a log of their own."""
        try:
            path = yield self.worker_tool_path()
        except ToolNotSent:
            return None
        stats = remotecommand.RemoteShellCommand(
            self.workdir, ["python3", path, "compile-cache", "stats"], env=self.env,
            collectStdout=True, logEnviron=False)
        yield self.runCommand(stats)
        try:
            counts = CompileCacheStats.from_answer(read_answer(stats.stdout))
        except ProtocolError:
            counts = None
        if stats.didFail() or counts is None:
            return None
        self.setProperty("compile_cache", counts.as_property(), "Cargo")
        yield self.addCompleteLog("compile cache", counts.report())
        return counts

    @defer.inlineCallbacks
    def free_space(self):
        """The bytes free to the build on the file system of its working directory (its
        volume, in a container), from coreutils' stat; None where that cannot be had."""
        free = remotecommand.RemoteShellCommand(
            self.workdir, ["stat", "--file-system", "--format=%a %S", "."],
            collectStdout=True, logEnviron=False)
        yield self.runCommand(free)
        try:
            blocks, size = free.stdout.split()
            return int(blocks) * int(size)
        except ValueError:
            return None

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
