"""A local worker, which outlives the master it is attached to in a farm of several
masters: when that connection is lost, it connects to the next master of the farm that
answers. Its connections send without Nagle's algorithm (connection.py).

buildbot_worker's Worker connects through one ClientService to one endpoint and retries
that endpoint for ever. FailoverWorker is that Worker with the endpoint replaced by one
that tries the farm's masters in turn, its own first, at every (re)connection; so it
goes back to its own master only when the one it moved to is lost in turn.

Runs in the worker's process (its buildbot.tac, written by cli/tacfiles.py): it imports
buildbot_worker and Twisted only.
"""

from __future__ import annotations

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python import log
from zope.interface import implementer

from buildbot_worker.bot import Worker

from .connection import send_promptly

# A master that does not answer within this is skipped for the next one.
CONNECT_TIMEOUT = 10


@implementer(IStreamClientEndpoint)
class FailoverEndpoint:
    """Connects to the first of ``endpoints`` (label, endpoint) that accepts."""

    def __init__(self, endpoints: list[tuple[str, IStreamClientEndpoint]]):
        if not endpoints:
            raise ValueError("FailoverEndpoint needs at least one endpoint")
        self.endpoints = endpoints
        self.connected_to: str | None = None

    @defer.inlineCallbacks
    def connect(self, factory):
        failures = []
        for label, endpoint in self.endpoints:
            try:
                protocol = yield endpoint.connect(factory)
            except Exception as err:  # noqa: BLE001 - any failure: try the next master
                failures.append(f"{label}: {err}")
                continue
            # The worker's side sends without delay too (see connection.py).
            send_promptly(getattr(protocol, "transport", None))
            if label != self.connected_to:
                log.msg(f"connected to the master at {label}"
                        + (f" (not answering: {'; '.join(failures)})" if failures else ""))
            self.connected_to = label
            return protocol
        raise ConnectError(string="no master of the farm answers: " + "; ".join(failures))


class FailoverWorker(Worker):
    """``Worker`` whose first argument is the farm's masters, ``[(host, port), ...]``, its
    own first; the other arguments are Worker's, after its host and port."""

    def __init__(self, masters, name, passwd, basedir, keepalive, maxdelay=None,
                 protocol="pb", useTls=None, **kwargs):
        if protocol != "pb" or useTls:
            raise ValueError("FailoverWorker connects with Buildbot's pb protocol over TCP")
        masters = [(host, int(port)) for host, port in masters]
        host, port = masters[0]
        super().__init__(host, port, name, passwd, basedir, keepalive, maxdelay=maxdelay,
                         protocol=protocol, useTls=useTls, **kwargs)
        # Worker made one ClientService on (host, port): the same, on every master.
        [single] = [s for s in self.services if isinstance(s, ClientService)]
        self.removeService(single)
        self.endpoint = FailoverEndpoint([
            (f"{h}:{p}", TCP4ClientEndpoint(reactor, h, p, timeout=CONNECT_TIMEOUT))
            for h, p in masters])
        ClientService(self.endpoint, self.bf,
                      retryPolicy=backoffPolicy(maxDelay=maxdelay or 60)).setServiceParent(self)
