"""The master's worker port, also as a Unix socket for containers without network.

Docker pools on the local engine start every build's container with no network
at all (``network_mode: none``) and mount this socket's directory: the worker
inside connects through it, and nothing else on the host or any network is
reachable from the build. The service forwards each connection to the worker
(PB) port, where Buildbot authenticates the worker as usual, without Nagle's
algorithm on the forwarded TCP side.
"""

from __future__ import annotations

import os
from pathlib import Path

from buildbot.util import service
from twisted.internet import defer, endpoints, reactor
from twisted.protocols import portforward
from twisted.python import log

from rustfarm.workers.connection import send_promptly

# The socket is mounted read-only into the containers, whose worker runs as an
# unprivileged user (uid 1000): connecting needs write permission on the socket.
SOCKET_MODE = 0o666


class PromptProxyClient(portforward.ProxyClient):
    """The forwarded connection's TCP side, without Nagle's algorithm: the worker's
    small messages go on at once, not held for the master's delayed acknowledgement
    (see rustfarm.workers.connection)."""

    def connectionMade(self) -> None:
        send_promptly(self.transport)
        super().connectionMade()


class PromptProxyClientFactory(portforward.ProxyClientFactory):
    protocol = PromptProxyClient


class WorkerProxy(portforward.ProxyServer):
    clientProtocolFactory = PromptProxyClientFactory


class WorkerProxyFactory(portforward.ProxyFactory):
    protocol = WorkerProxy


class WorkerSocket(service.BuildbotService):
    name = "worker-socket"

    def checkConfig(self, path: str, port: int, host: str = "127.0.0.1"):
        if len(path) > 104:
            from buildbot.config import error
            error(f"worker socket path too long for a Unix socket: {path}")

    @defer.inlineCallbacks
    def reconfigService(self, path: str, port: int, host: str = "127.0.0.1"):
        wanted = (path, port, host)
        if getattr(self, "_settings", None) == wanted and getattr(self, "_listening", None):
            return
        yield self._stop_listening()
        self._settings = wanted
        if self.running:
            yield self._listen()

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        if getattr(self, "_settings", None) and not getattr(self, "_listening", None):
            yield self._listen()

    @defer.inlineCallbacks
    def stopService(self):
        yield self._stop_listening()
        yield super().stopService()

    @defer.inlineCallbacks
    def _listen(self):
        path, port, host = self._settings
        socket = Path(path)
        socket.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(socket.parent, 0o755)
        if socket.is_socket() or socket.exists():
            socket.unlink()         # left by a master that did not stop cleanly
        endpoint = endpoints.UNIXServerEndpoint(reactor, str(socket), mode=SOCKET_MODE,
                                                wantPID=False)
        self._listening = yield endpoint.listen(WorkerProxyFactory(host, port))
        log.msg(f"worker socket {socket} forwards to {host}:{port}")

    @defer.inlineCallbacks
    def _stop_listening(self):
        listening, self._listening = getattr(self, "_listening", None), None
        if listening is not None:
            yield listening.stopListening()
            path = Path(self._settings[0])
            if path.is_socket():
                path.unlink()
