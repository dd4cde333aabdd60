"""Compile jobs: an uploaded project built for some targets as ordinary Buildbot builds.

A job is one upload: it is checked and unpacked (master/uploads.py), repacked
as the source tarball, and submitted by the ``compile`` scheduler as one
buildset on the ``compile:<target>`` builders, queued with all other work and
shown in the web UI under the "compile" project with the uploader as owner.
Each build puts its archive in the job's directory; the job is done when its
buildset is. The job's record (``job.json``, written before the upload is
answered) lets any master of the farm answer for it, also after the master that
took it restarted: the rest is read from the buildset. Jobs and their files are
removed ``compile.keep`` seconds after they end. At most ``compile.queue`` jobs
wait or run at once.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from buildbot.data import resultspec
from buildbot.process.properties import Properties
from buildbot.process.results import Results, statusToString
from buildbot.schedulers.base import BaseScheduler
from buildbot.util import service
from twisted.internet import defer, task, threads
from twisted.python import log

from rustfarm.artifact_store import write_text
from rustfarm.build_records import has_ended, newest
from rustfarm.failures import error_lines
from rustfarm.farmfile import Farm
from rustfarm.farmfile.model import COMPILE_PROJECT
from rustfarm.names import COMPILE_JOB_PROPERTY, new_upload_job_id
from rustfarm.state import UPLOAD_RECORD, UPLOAD_RESULTS, UPLOAD_SOURCE

from .uploads import Limits, UploadRefused, repack, unpack

SERVICE_NAME = "rustfarm-compile-jobs"
SCHEDULER_NAME = "compile"
JOB_ID = re.compile(r"[0-9a-f]{16}")     # as rustfarm.names.new_upload_job_id makes them


class QueueFull(Exception):
    """As many compile jobs as compile.queue already wait or run."""


@dataclass
class TargetResult:
    target: str
    result: str = "queued"          # then: building, success, failure, exception, ...
    build_url: str = ""
    archive: Path | None = None
    failed_step: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class Job:
    id: str
    user: str
    crate: str
    targets: list[str]
    directory: Path
    created: float
    bsid: int | None = None
    ended: float | None = None
    results: dict[str, TargetResult] = field(default_factory=dict)
    poll: task.LoopingCall | None = None
    waiting: list[defer.Deferred] = field(default_factory=list)

    def when_done(self) -> defer.Deferred:
        """Fires when the job ends (at once if it has)."""
        if self.done:
            return defer.succeed(self)
        self.waiting.append(defer.Deferred())
        return self.waiting[-1]

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def succeeded(self) -> bool:
        return self.done and all(r.result in ("success", "warnings")
                                 for r in self.results.values())

    def record(self) -> dict:
        """What is kept in the job's directory: all that its buildset does not say."""
        return {"job": self.id, "user": self.user, "crate": self.crate,
                "targets": self.targets, "created": self.created, "buildset": self.bsid}

    @classmethod
    def from_record(cls, directory: Path) -> "Job | None":
        """The job recorded in ``directory``; None without a readable record."""
        try:
            record = json.loads((directory / UPLOAD_RECORD).read_text())
            return cls(record["job"], record["user"], record["crate"],
                       list(record["targets"]), directory, float(record["created"]),
                       bsid=int(record["buildset"]),
                       results={t: TargetResult(t) for t in record["targets"]})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def as_dict(self, base_url: str) -> dict:
        return {"job": self.id, "crate": self.crate, "owner": self.user,
                "state": ("succeeded" if self.succeeded else "failed") if self.done
                else "running",
                "result_url": f"{base_url}jobs/{self.id}/result" if self.succeeded else None,
                "targets": {t: {"result": r.result, "build_url": r.build_url,
                                "failed_step": r.failed_step or None, "errors": r.errors}
                            for t, r in self.results.items()}}


class CompileScheduler(BaseScheduler):
    """Starts nothing by itself: the compile service submits each upload through it, so
    its builds are a scheduler's, as every other build of the farm."""

    compare_attrs = (*BaseScheduler.compare_attrs,)

    def submit(self, job: Job, crate_dir: str):
        props = Properties()
        for name, value in ((COMPILE_JOB_PROPERTY, job.id), ("crate_dir", crate_dir),
                            ("crate_name", job.crate), ("owner", job.user),
                            ("profile", "release")):
            props.setProperty(name, value, "Compile")
        return self.addBuildsetForSourceStamps(
            sourcestamps=[{"codebase": "", "repository": "upload", "branch": None,
                           "revision": None, "project": COMPILE_PROJECT}],
            reason=f"compile {job.crate} uploaded by {job.user}", properties=props,
            builderNames=[f"{COMPILE_PROJECT}:{t}" for t in job.targets])


class CompileJobs(service.BuildbotService):
    """The master's compile jobs: submitted, followed until done, removed when old."""

    name = SERVICE_NAME

    def checkConfig(self, farm: Farm, uploads: Path, url: str):
        pass

    def reconfigService(self, farm: Farm, uploads: Path, url: str):
        self.settings = farm.compile
        self.limits = Limits(farm.compile.max_files, farm.compile.max_unpacked)
        self.uploads = uploads
        self.url = url
        if not hasattr(self, "jobs"):
            self.jobs: dict[str, Job] = {}
        return defer.succeed(None)

    def startService(self):
        self.cleaner = task.LoopingCall(self.remove_old)
        self.cleaner.clock = self.master.reactor
        self.cleaner.start(60, now=False).addErrback(log.err, "removing old compile jobs")
        return super().startService()

    def stopService(self):
        if self.cleaner.running:
            self.cleaner.stop()
        return super().stopService()

    @property
    def waiting(self) -> int:
        return sum(1 for job in self.jobs.values() if not job.done)

    def scheduler(self) -> CompileScheduler:
        return self.master.scheduler_manager.namedServices[SCHEDULER_NAME]

    @defer.inlineCallbacks
    def submit(self, user: str, data: bytes, targets: list[str]):
        """A new job for ``data`` (the upload); raises UploadRefused or QueueFull."""
        if self.waiting >= self.settings.queue:
            raise QueueFull(f"{self.waiting} compile jobs are waiting or running "
                            f"(compile.queue is {self.settings.queue})")
        unknown = [t for t in targets if t not in self.settings.targets]
        if unknown:
            raise UploadRefused(f"unknown target {', '.join(unknown)}; uploads build for: "
                                f"{', '.join(self.settings.targets)}")
        job_id = new_upload_job_id()
        directory = self.uploads / job_id
        try:
            project = yield threads.deferToThread(unpack, data, directory / "project",
                                                  self.limits)
            upload = directory / UPLOAD_SOURCE
            yield threads.deferToThread(repack, project, upload)
        except Exception:
            yield threads.deferToThread(shutil.rmtree, directory, True)
            raise
        yield threads.deferToThread(shutil.rmtree, directory / "project", True)
        job = Job(job_id, user, project.name, list(targets), directory,
                  self.master.reactor.seconds(),
                  results={t: TargetResult(t) for t in targets})
        self.jobs[job_id] = job
        bsid, _ = yield self.scheduler().submit(job, project.crate_dir)
        job.bsid = bsid
        yield threads.deferToThread(write_text, directory / UPLOAD_RECORD,
                                    json.dumps(job.record()))
        self.follow(job)
        return job

    @defer.inlineCallbacks
    def find(self, job_id: str):
        """The job ``job_id``: this master's, or one another master (or this one before
        a restart) took, read from its record and its buildset; None if there is none."""
        if job_id in self.jobs:
            return self.jobs[job_id]
        if not JOB_ID.fullmatch(job_id):
            return None
        job = yield threads.deferToThread(Job.from_record, self.uploads / job_id)
        if job is None or job_id in self.jobs:
            return self.jobs.get(job_id)
        self.jobs[job_id] = job
        yield self.update(job)
        if not job.done:
            self.follow(job)
        return job

    def follow(self, job: Job) -> None:
        job.poll = task.LoopingCall(self.keep_updating, job)
        job.poll.clock = self.master.reactor
        job.poll.start(0.5).addErrback(log.err, f"following compile job {job.id}")

    @defer.inlineCallbacks
    def keep_updating(self, job: Job):
        """``update``, whose failure (the database restarting) waits for the next round
        instead of ending the job's polling: its clients would see it run for ever."""
        try:
            yield self.update(job)
        except Exception as err:
            log.msg(f"compile job {job.id}: its builds' states could not be read ({err}); "
                    "reading again")

    @defer.inlineCallbacks
    def update(self, job: Job):
        """Read the job's builds' states; end the job when its buildset is complete."""
        data = self.master.data
        buildset = yield data.get(("buildsets", job.bsid))
        requests = yield data.get(("buildrequests",), filters=[
            resultspec.Filter("buildsetid", "eq", [job.bsid])])
        for request in requests:
            builder = self.master.botmaster.getBuilderById(request["builderid"])
            target = builder.name.split(":", 1)[-1] if builder else ""
            result = job.results.get(target)
            if result is None:
                continue
            builds = yield data.get(("buildrequests", request["buildrequestid"], "builds"))
            if not builds:
                continue
            build = newest(builds)
            result.build_url = (f"{self.url}#/builders/{build['builderid']}/builds/"
                                f"{build['number']}")
            if not has_ended(build):
                result.result = "building"
                continue
            if result.result in Results and result.result != "retry":
                continue
            result.result = statusToString(build["results"])
            if build["results"] in (0, 1):
                found = sorted((job.directory / UPLOAD_RESULTS / target).glob("*.tar.gz"))
                result.archive = found[0] if found else None
            else:
                yield self.read_failure(result, build)
        if buildset and buildset["complete"]:
            job.ended = ended_at(buildset) or self.master.reactor.seconds()
            if job.poll and job.poll.running:
                job.poll.stop()
            waiting, job.waiting = job.waiting, []
            for waiter in waiting:
                waiter.callback(job)

    @defer.inlineCallbacks
    def read_failure(self, result: TargetResult, build: dict):
        steps = yield self.master.data.get(("builds", build["buildid"], "steps"))
        failed = next((s for s in steps if s["results"] in (2, 4)), None)
        if failed is None:
            result.failed_step = build["state_string"]
            return
        result.failed_step = f"{failed['name']} ({failed['state_string']})"
        logs = yield self.master.data.get(("steps", failed["stepid"], "logs"))
        stdio = next((entry for entry in logs if entry["slug"] == "stdio"), None)
        if stdio is None:
            return
        content = yield self.master.data.get(("logs", stdio["logid"], "contents"))
        # Each line starts with its stream: o (stdout), e (stderr), h (header).
        text = "\n".join(line[1:] for line in content["content"].splitlines()
                         if line[:1] in ("o", "e"))
        result.errors = error_lines(text)

    @defer.inlineCallbacks
    def remove_old(self):
        now = self.master.reactor.seconds() if self.master else time.time()
        old = [job for job in self.jobs.values()
               if job.done and now - job.ended > self.settings.keep]
        for job in old:
            del self.jobs[job.id]
            yield threads.deferToThread(shutil.rmtree, job.directory, True)
        if not self.uploads.is_dir():
            return
        # Jobs this master does not follow: another master's, or from before a restart.
        for directory in list(self.uploads.iterdir()):
            if directory.name in self.jobs:
                continue
            try:
                gone = yield self.is_old(directory, now)
            except Exception:
                # Another master removed it, or the database is away: next round.
                log.err(None, f"checking compile job directory {directory}")
                continue
            if gone:
                yield threads.deferToThread(shutil.rmtree, directory, True)

    @defer.inlineCallbacks
    def is_old(self, directory: Path, now: float):
        """Whether the upload directory of a job this master does not follow can go."""
        job = Job.from_record(directory)
        if job is None:
            # An upload never queued (its master died unpacking it): by its age.
            return time.time() - directory.stat().st_mtime > self.settings.keep
        buildset = yield self.master.data.get(("buildsets", job.bsid))
        if buildset is None:
            return True
        ended = ended_at(buildset) if buildset["complete"] else None
        return ended is not None and now - ended > self.settings.keep


def ended_at(buildset: dict) -> float | None:
    """When a buildset completed, in seconds since the epoch."""
    complete_at = buildset.get("complete_at")
    if complete_at is None:
        return None
    return complete_at.timestamp() if hasattr(complete_at, "timestamp") else float(complete_at)
