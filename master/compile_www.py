"""The compile endpoint: send a Cargo project, get its binaries back.

A Buildbot www plugin under ``/plugins/compile/``: ``POST jobs?target=T`` with a tar or
tar.gz body, answered with the binaries or the compiler's errors, or a job to poll with
``&wait=0``; a token of www.users is the credential. docs/compile-endpoint.md has the
protocol; tessel_www.py serves Tessel's clients on a port of their own.
"""

from __future__ import annotations

import base64
import hmac
import json
import tarfile
from pathlib import Path

from buildbot.www.plugin import Application
from twisted.internet import defer, reactor, threads
from twisted.python import log
from twisted.web import resource, server

from rustfarm.state import UPLOAD_RESULTS, token_secret_name

from .auth import LoginThrottle
from .plugin_root import PluginRoot
from .compile_jobs import SERVICE_NAME, Job, QueueFull
from .releases import Release, all_targets_archive, read_target
from .uploads import UploadRefused

RETRY_AFTER = 30      # seconds a client refused for a full queue is told to wait
WAIT_LIMIT = 3 * 3600  # seconds a client's request may wait for its builds


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _text(request, status: int, message: str, headers: dict | None = None) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), str(value).encode())
    request.write(message.rstrip("\n").encode() + b"\n")
    request.finish()


def json_reply(request, status: int, body: dict) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.write(json.dumps(body).encode())
    request.finish()


def _file(request, path: Path, filename: str, content_type: str) -> None:
    request.setResponseCode(200)
    request.setHeader(b"content-type", content_type.encode())
    request.setHeader(b"content-disposition", f'attachment; filename="{filename}"'.encode())
    request.write(path.read_bytes())
    request.finish()


def failure_text(job: Job) -> str:
    """The 400's body: each failed target, its failing step, its errors, its log."""
    parts = []
    for target, result in job.results.items():
        if result.result in ("success", "warnings"):
            continue
        parts.append(f"{target}: {result.result}" + (f" at {result.failed_step}"
                                                     if result.failed_step else ""))
        parts += [f"  {line}" for line in result.errors]
        if result.build_url:
            parts.append(f"  log: {result.build_url}")
    return "\n".join(parts) + "\n"


def job_release(job: Job) -> Release:
    archives = tuple(a for a in (read_target(job.directory / UPLOAD_RESULTS / t)
                                 for t in job.targets) if a)
    return Release(job.crate, "upload", job.directory / UPLOAD_RESULTS, archives)


def single_binary(archive: Path) -> tuple[str, bytes] | None:
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        if len(members) != 1:
            return None
        return members[0].name, tar.extractfile(members[0]).read()


class CompileEndpoint:
    """What both doors (the plugin, Tessel's port) share: credentials, limits, answers."""

    def __init__(self, master, anonymous: bool = False):
        self.master = master
        self.anonymous = anonymous
        self.throttle = LoginThrottle()
        self.anonymous_jobs: dict[str, str] = {}     # address -> its running job

    @property
    def jobs(self):
        return self.master.namedServices.get(SERVICE_NAME) or \
            self.master.service_manager.namedServices.get(SERVICE_NAME)

    @defer.inlineCallbacks
    def user(self, request):
        """The token's user; raises Refusal(401/403) without valid credentials."""
        address = getattr(request.getClientAddress(), "host", "") or "unknown"
        given_user, token = self.credentials(request)
        if token is None:
            if self.anonymous:
                return None
            raise Refusal(401, "a token is needed: Authorization: Bearer TOKEN "
                          "(make one with `farm token USER`)",
                          {"WWW-Authenticate": 'Bearer realm="rustfarm"'})
        if self.throttle.wait(given_user or "", address):
            raise Refusal(403, "too many wrong tokens from this address; try again later")
        for user in self.master.config.www.get("plugins", {}).get("compile", {}).get("users", []):
            if given_user not in (None, user):
                continue
            secret = yield self.master.secrets_manager.get(token_secret_name(user))
            if secret is not None and secret.value and hmac.compare_digest(
                    secret.value.encode(), token.encode()):
                self.throttle.succeeded(user, address)
                return user
        self.throttle.failed(given_user or "", address)
        raise Refusal(401, "the token is not valid", {"WWW-Authenticate": 'Bearer realm="rustfarm"'})

    @staticmethod
    def credentials(request) -> tuple[str | None, str | None]:
        header = (request.getHeader(b"authorization") or b"").decode(errors="replace")
        kind, _, value = header.partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return None, value.strip()
        if kind.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            return user, password
        return None, None

    def body(self, request, limit: int) -> bytes:
        length = request.getHeader(b"content-length")
        if length and length.isdigit() and int(length) > limit:
            raise Refusal(413, f"the upload is {int(length)} bytes; at most {limit} are "
                          "accepted (compile.max_upload)")
        request.content.seek(0)
        data = request.content.read(limit + 1)
        if len(data) > limit:
            raise Refusal(413, f"the upload is over {limit} bytes (compile.max_upload)")
        if not data:
            raise Refusal(400, "the request has no body: send the project as a tar or tar.gz")
        return data

    @defer.inlineCallbacks
    def submit(self, request, targets: list[str]):
        """Checks, then a new job; raises Refusal."""
        jobs = self.jobs
        if jobs is None or not jobs.settings.targets:
            raise Refusal(503, "this farm builds no uploads: no target builds in containers "
                          "(compile.targets)")
        user = yield self.user(request)
        address = getattr(request.getClientAddress(), "host", "") or "unknown"
        if user is None:
            running = self.anonymous_jobs.get(address)
            if running and running in jobs.jobs and not jobs.jobs[running].done:
                raise Refusal(429, "one compile job at a time without a token",
                              {"Retry-After": RETRY_AFTER})
        data = self.body(request, jobs.settings.max_upload)
        try:
            job = yield jobs.submit(user or f"anonymous@{address}", data,
                                    targets or list(jobs.settings.targets))
        except UploadRefused as err:
            raise Refusal(400, f"upload refused: {err}") from None
        except QueueFull as err:
            raise Refusal(429, f"{err}; try again later", {"Retry-After": RETRY_AFTER}) from None
        if user is None:
            self.anonymous_jobs[address] = job.id
        return job

    @defer.inlineCallbacks
    def wait(self, job: Job):
        """Until the job ends, or WAIT_LIMIT (then the answer is 202 and the job)."""
        done = job.when_done()
        done.addTimeout(WAIT_LIMIT, reactor, onTimeoutCancel=lambda *_: None)
        yield done

    @defer.inlineCallbacks
    def answer(self, request, job: Job, binary_wanted: bool):
        """Write the job's result: its binary or archives (200), or its errors (400)."""
        if not job.done:
            json_reply(request, 202, job.as_dict(self.base_url))
            return
        if not job.succeeded:
            _text(request, 400, failure_text(job))
            return
        release = job_release(job)
        if len(release.archives) == 1:
            [archive] = release.archives
            accept = (request.getHeader(b"accept") or b"").decode()
            wants_archive = "gzip" in accept or "tar" in accept
            if binary_wanted and not wants_archive:
                single = yield threads.deferToThread(single_binary, archive.path)
                if single:
                    name, data = single
                    request.setHeader(b"content-type", b"application/octet-stream")
                    request.setHeader(b"content-disposition",
                                      f'attachment; filename="{name}"'.encode())
                    request.write(data)
                    request.finish()
                    return
            _file(request, archive.path, archive.name, "application/gzip")
            return
        made = yield threads.deferToThread(all_targets_archive, release)
        _file(request, made, f"{job.crate}-all.tar.gz", "application/gzip")

    base_url = ""

    def handle(self, request, action, refusal_as_json: bool = False):
        """Run ``action`` (a coroutine function of request) and turn refusals into
        answers: text, or ``{"error": ...}`` for a client that reads JSON."""
        def answer(status: int, message: str, headers: dict | None = None) -> None:
            if refusal_as_json:
                for name, value in (headers or {}).items():
                    request.setHeader(name.encode(), str(value).encode())
                json_reply(request, status, {"error": message.rstrip("\n"), "stdout": "",
                                        "stderr": "", "binary": None})
            else:
                _text(request, status, message, headers)

        def refused(failure):
            if failure.check(Refusal):
                error = failure.value
                answer(error.status, str(error), error.headers)
                return
            log.err(failure, "compile endpoint")
            answer(500, "the farm failed to handle this upload; see the master's log")

        defer.ensureDeferred(action(request)).addErrback(refused)
        return server.NOT_DONE_YET


class JobsResource(resource.Resource):
    """``/plugins/compile/jobs``: POST a new job; ``jobs/<id>`` and ``jobs/<id>/result``."""

    def __init__(self, endpoint: CompileEndpoint):
        super().__init__()
        self.endpoint = endpoint

    def getChild(self, path, request):
        if path == b"":
            return self
        return JobResource(self.endpoint, path.decode(errors="replace"))

    def render_POST(self, request):
        endpoint = self.endpoint
        targets = [t.decode() for t in request.args.get(b"target", [])]
        wait = request.args.get(b"wait", [b"1"])[0] not in (b"0", b"false", b"no")

        async def action(request):
            job = await endpoint.submit(request, targets)
            if not wait:
                json_reply(request, 202, job.as_dict(endpoint.base_url))
                return
            await endpoint.wait(job)
            await endpoint.answer(request, job, binary_wanted=True)

        return endpoint.handle(request, action)


class JobResource(resource.Resource):
    isLeaf = True

    def __init__(self, endpoint: CompileEndpoint, job_id: str):
        super().__init__()
        self.endpoint = endpoint
        self.job_id = job_id

    def render_GET(self, request):
        endpoint = self.endpoint

        async def action(request):
            owner = await endpoint.user(request)
            job = (await endpoint.jobs.find(self.job_id)) if endpoint.jobs else None
            if job is None or (owner is not None and job.user != owner):
                raise Refusal(404, f"no compile job {self.job_id} (jobs are kept for "
                              "compile.keep seconds after they end)")
            if request.postpath in ([], [b""]):
                json_reply(request, 200, job.as_dict(endpoint.base_url))
            elif request.postpath == [b"result"]:
                await endpoint.answer(request, job, binary_wanted=False)
            else:
                raise Refusal(404, "jobs/<id> or jobs/<id>/result")

        return endpoint.handle(request, action)


class CompilePlugin(Application):
    def __init__(self) -> None:
        super().__init__(__name__.rsplit(".", 1)[0], "rustfarm compile endpoint", ui=False)

    def setConfiguration(self, config: dict) -> None:
        super().setConfiguration(config)
        self.endpoint = CompileEndpoint(self.master)
        self.endpoint.base_url = config.get("url", "")
        self.resource = PluginRoot({b"jobs": JobsResource(self.endpoint)})


ep = CompilePlugin()


