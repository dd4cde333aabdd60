"""Worker connections without Nagle's algorithm, checked on real sockets: the master's
side as a worker attaches, the TCP side of the local worker socket's forwarder, and a
local worker's side."""

from __future__ import annotations

import json
import subprocess
import sys

from rustfarm.workers.connection import PromptConnectionMixin
from rustfarm.workers.docker import FarmDockerLatentWorker
from rustfarm.workers.ec2.worker import FarmEC2LatentWorker
from rustfarm.workers.local import LocalWorker

# Run with its own reactor: a worker connects through the master's worker socket
# (WorkerSocket's forwarder, a Unix socket in front of a TCP port) and sends a line;
# the "master" at the TCP port attaches it through PromptConnectionMixin. Prints each
# TCP socket's TCP_NODELAY as the kernel reports it.
THROUGH_THE_WORKER_SOCKET = r"""
import json, socket, sys
from types import SimpleNamespace
from twisted.internet import endpoints, protocol, reactor
from rustfarm.master.worker_socket import WorkerProxyFactory
from rustfarm.workers.connection import PromptConnectionMixin, send_promptly

def nodelay(transport):
    return transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0

class Buildbot:
    def attached(self, conn):
        return "attached"

class Worker(PromptConnectionMixin, Buildbot):
    pass

seen = {}
forwarders = []

class Master(protocol.Protocol):
    def dataReceived(self, data):
        seen["master side before attaching"] = nodelay(self.transport)
        conn = SimpleNamespace(mind=SimpleNamespace(broker=SimpleNamespace(transport=self.transport)))
        seen["attached returns"] = Worker().attached(conn)
        seen["master side after attaching"] = nodelay(self.transport)
        seen["forwarder's TCP side"] = nodelay(forwarders[0].peer.transport)
        reactor.stop()

class Forwarders(WorkerProxyFactory):
    def buildProtocol(self, addr):
        proxy = super().buildProtocol(addr)
        forwarders.append(proxy)
        return proxy

class Sender(protocol.Protocol):
    def connectionMade(self):
        seen["unix socket is not TCP"] = not send_promptly(self.transport)
        self.transport.write(b"hello\n")

def main(port):
    listening = port.getHost().port
    forwarder = endpoints.UNIXServerEndpoint(reactor, sys.argv[1])
    forwarder.listen(Forwarders("127.0.0.1", listening)).addCallback(
        lambda _: endpoints.UNIXClientEndpoint(reactor, sys.argv[1]).connect(
            protocol.Factory.forProtocol(Sender)))

master = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
master.listen(protocol.Factory.forProtocol(Master)).addCallback(main)
reactor.callLater(20, reactor.stop)
reactor.run()
print(json.dumps(seen))
"""


def test_the_master_and_the_worker_socket_send_without_delay(tmp_path):
    done = subprocess.run([sys.executable, "-c", THROUGH_THE_WORKER_SOCKET,
                           str(tmp_path / "worker.sock")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "unix socket is not TCP": True,
        "master side before attaching": False,      # the kernel's default: Nagle on
        "attached returns": "attached",              # Buildbot's attach goes on
        "master side after attaching": True,
        "forwarder's TCP side": True,
    }


# A local worker's side: FailoverEndpoint (what every local worker connects through)
# connects to a real TCP port and turns the algorithm off on its connection.
LOCAL_WORKER_SIDE = r"""
import json, socket
from twisted.internet import endpoints, protocol, reactor
from rustfarm.workers.failover_worker import FailoverEndpoint

seen = {}

def report(connected):
    handle = connected.transport.getHandle()
    seen["worker side"] = handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    reactor.stop()

def connect(port):
    target = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    FailoverEndpoint([("master", target)]).connect(
        protocol.Factory.forProtocol(protocol.Protocol)).addCallback(report)

endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
    protocol.Factory.forProtocol(protocol.Protocol)).addCallback(connect)
reactor.callLater(20, reactor.stop)
reactor.run()
print(json.dumps(seen))
"""


def test_a_local_worker_sends_without_delay():
    done = subprocess.run([sys.executable, "-c", LOCAL_WORKER_SIDE], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"worker side": True}


def test_every_worker_class_of_the_farm_attaches_without_delay():
    for worker_class in (LocalWorker, FarmDockerLatentWorker, FarmEC2LatentWorker):
        # Buildbot's attach is reached through the mixin's (the farm's own class may
        # define one too, calling on).
        owners = [c for c in worker_class.__mro__ if "attached" in vars(c)]
        buildbot = next(c for c in owners if c.__module__.startswith("buildbot."))
        assert owners.index(PromptConnectionMixin) < owners.index(buildbot), worker_class
