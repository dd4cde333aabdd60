"""What the kernel says of another process's TCP socket on this machine: found by its
ports in /proc, read through a copy of its descriptor (pidfd_getfd(2), as root)."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

SYS_PIDFD_GETFD = 438


def _hex_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def socket_holder(local_port: int | None = None, remote_port: int | None = None) -> tuple[int, int]:
    """(pid, fd) of a process's IPv4 TCP connection (this network namespace's) from
    ``local_port`` and/or to ``remote_port``, whatever the addresses."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = _hex_port(fields[1]), _hex_port(fields[2])
        if (local_port in (None, local) and remote_port in (None, remote)
                and remote != 0 and fields[9] != "0"):
            inodes.add(fields[9])
    assert inodes, f"no TCP connection from port {local_port} to port {remote_port}"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(fd_dir.parent.name), int(fd.name)
        except OSError:
            continue
    raise AssertionError(f"no process holds the connection from port {local_port}"
                         f" to port {remote_port}")


def sends_without_delay(pid: int, fd: int) -> bool:
    """Whether Nagle's algorithm is off on process ``pid``'s TCP socket ``fd``."""
    pidfd = os.pidfd_open(pid)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        assert copy >= 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(pidfd)
    with socket.socket(fileno=copy) as connection:
        return connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
