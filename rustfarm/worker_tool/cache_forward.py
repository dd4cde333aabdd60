"""``cache-forward SOCKET PORT``: 127.0.0.1:PORT forwarded to the Unix socket SOCKET, in
the background for as long as the container lives. The way sccache, in a container
with no network, reaches the compile cache relay of an EC2 instance
(ami/rustfarm-cache-relay). Returns once it listens; a second call finds the port
taken and leaves the first forwarder be.

Result: ``{"listening": "127.0.0.1:PORT", "started": true|false}``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from .protocol import answer, fail, say


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _forward(connection: socket.socket, socket_path: str) -> None:
    with connection, socket.socket(socket.AF_UNIX) as relay:
        try:
            relay.connect(socket_path)
        except OSError:
            return
        back = threading.Thread(target=_pipe, args=(relay, connection), daemon=True)
        back.start()
        _pipe(connection, relay)
        back.join()


def forward(socket_path: str, port: int) -> dict:
    """Start the forwarder (unless one listens already); the result."""
    listening = f"127.0.0.1:{port}"
    if not os.path.exists(socket_path):
        fail(f"no compile cache relay at {socket_path}")
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", port))
    except OSError:
        say(f"compile cache relay: already forwarded on {listening}")
        return {"listening": listening, "started": False}
    listener.listen(64)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        listener.close()
        say(f"compile cache relay: {listening} -> {socket_path}")
        return {"listening": listening, "started": True}
    # The forwarder: out of the step's session and output, so the step ends now.
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_forward, args=(connection, socket_path), daemon=True).start()


def main(args: list[str]) -> None:
    socket_path, port = args
    answer(forward(socket_path, int(port)))
