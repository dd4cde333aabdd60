"""Tessel's compile server on a port of its own (compile.tessel_port): ``POST
/rust-compile``, the project in and the binary out, one target and no job to poll."""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path

from buildbot.util import service
from twisted.internet import defer, reactor, threads
from twisted.web import resource, server

from rustfarm.worker_tool.archives import Member, tar_bytes

from .compile_jobs import Job
from .compile_www import CompileEndpoint, Refusal, failure_text, job_release, json_reply


def tessel_binary(archive: Path, name: str) -> bytes | str:
    """The uncompressed tar Tessel's client deploys: the binary named ``name`` (the
    crate's only one, by whatever name) under that name; or why there is none."""
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        member = members.get(name) or (next(iter(members.values()))
                                       if len(members) == 1 else None)
        if member is None:
            return (f"the project builds {', '.join(sorted(members)) or 'no binary'}; "
                    f"none is named {name}")
        data = tar.extractfile(member).read()
    return tar_bytes([Member(name, data=data, executable=True)])


class TesselCompile(resource.Resource):
    """``POST /rust-compile``: the project in, the binary out, as Tessel's compile
    server answered; one target, no job to poll.

    Tessel's last client (t2-cli 0.1.23) names the binary it wants
    (``?target=NAME``) and reads JSON: ``{"stdout", "stderr", "binary"}``, the binary
    as base64 of a tar that holds it under that name, or ``{"error"}`` with a 4xx
    status. Older clients name none and get the raw binary (200) or the error as
    text (400)."""

    isLeaf = True

    def __init__(self, endpoint: CompileEndpoint, target: str):
        super().__init__()
        self.endpoint = endpoint
        self.target = target

    def render_POST(self, request):
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            return b"POST /rust-compile\n"
        endpoint = self.endpoint
        wanted = request.args.get(b"target", [b""])[0].decode(errors="replace")
        if not wanted:
            async def action(request):
                job = await endpoint.submit(request, [self.target])
                await endpoint.wait(job)
                await endpoint.answer(request, job, binary_wanted=True)
            return endpoint.handle(request, action)

        async def json_action(request):
            job = await endpoint.submit(request, [self.target])
            await endpoint.wait(job)
            await self.answer_json(request, job, wanted)

        return endpoint.handle(request, json_action, refusal_as_json=True)

    @defer.inlineCallbacks
    def answer_json(self, request, job: Job, wanted: str):
        if not job.done:
            raise Refusal(503, f"the build is still running: {job.as_dict('')['targets']}")
        if not job.succeeded:
            raise Refusal(400, failure_text(job))
        [archive] = job_release(job).archives
        binary = yield threads.deferToThread(tessel_binary, archive.path, wanted)
        if isinstance(binary, str):
            raise Refusal(400, binary)
        result = job.results[self.target]
        json_reply(request, 200, {"stdout": f"compiled {job.crate} for {self.target}: "
                                       f"{result.build_url}\n",
                             "stderr": "", "binary": base64.b64encode(binary).decode()})


class TesselServer(service.BuildbotService):
    """A port of its own answering POST /rust-compile, like Tessel's server's 49160."""

    name = "rustfarm-tessel-compile"

    def checkConfig(self, port: int, host: str, target: str, anonymous: bool, url: str):
        pass

    @defer.inlineCallbacks
    def reconfigService(self, port: int, host: str, target: str, anonymous: bool, url: str):
        if getattr(self, "listening", None) is not None:
            yield self.listening.stopListening()
        endpoint = CompileEndpoint(self.master, anonymous=anonymous)
        endpoint.base_url = url
        root = resource.Resource()
        root.putChild(b"rust-compile", TesselCompile(endpoint, target))
        self.listening = reactor.listenTCP(port, server.Site(root), interface=host)

    @defer.inlineCallbacks
    def stopService(self):
        if getattr(self, "listening", None) is not None:
            yield self.listening.stopListening()
            self.listening = None
        yield super().stopService()
