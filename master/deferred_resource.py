"""A web resource whose answer comes from a Deferred (a database query, a thread)."""

from __future__ import annotations

from twisted.python import log
from twisted.web import resource, server


class DeferredResource(resource.Resource):
    """Subclasses return a Deferred from ``compute(request)`` and write its result in
    ``answer(request, result)``; a failure answers 500 with its message, and is logged."""

    isLeaf = True

    def compute(self, request):
        raise NotImplementedError

    def answer(self, request, result) -> None:
        raise NotImplementedError

    def render_GET(self, request):
        def failed(failure):
            log.err(failure, f"answering {request.uri!r}")
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write(f"{failure.getErrorMessage()}\n".encode())
            request.finish()

        self.compute(request).addCallback(lambda result: self.answer(request, result)) \
            .addErrback(failed)
        return server.NOT_DONE_YET
