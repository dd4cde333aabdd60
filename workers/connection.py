"""Worker connections that send each message at once.

A remote command is several small Perspective Broker messages in turn (start,
output, status, completion). On a TCP connection with Nagle's algorithm, a small
write waits until the peer acknowledges the previous one, and Linux delays that
acknowledgement by up to 40 ms, which every ping, file transfer and command would
pay (docs/benchmarks.md). The farm's workers turn the algorithm off on
the master's side of their connection as they attach (the local worker socket's
forwarder does the same for its own TCP side, see master/worker_socket.py).
"""

from __future__ import annotations

import socket

from twisted.internet.interfaces import ITCPTransport


def send_promptly(transport) -> bool:
    """Turn off Nagle's algorithm on ``transport`` when it is a TCP connection;
    whether it was one (Twisted's Unix sockets claim the TCP interface too)."""
    if not ITCPTransport.providedBy(transport):
        return False
    if transport.getHandle().family not in (socket.AF_INET, socket.AF_INET6):
        return False
    transport.setTcpNoDelay(True)
    return True


class PromptConnectionMixin:
    """For the farm's worker classes (before Buildbot's own in the bases): the
    master's side of the worker's connection sends without delay."""

    def attached(self, conn):
        broker = getattr(getattr(conn, "mind", None), "broker", None)
        send_promptly(getattr(broker, "transport", None))
        return super().attached(conn)
