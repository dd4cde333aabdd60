"""Crate copies an EC2 pool's instances share through the pool's compile cache bucket,
so that an instance started later does not need the master to send what an earlier one
was sent: each entry is one .tar.gz object, ``PREFIX/crates/KIND/KEY/LISTING.tar.gz``
(the store key and the digest of the entry's listing, which pins it). The tool reads
and writes them through the instance's cache relay (the Unix socket
``RUSTFARM_CACHE_SOCKET``), which signs for the instance, so no credential is in the
container, and keeps writes out of untrusted builds. An object is checked like an entry
the master sends (crate_copies.receive): one that was altered is not used.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import tarfile
import tempfile
from dataclasses import dataclass

from .crate_copies import receive

SOCKET_VARIABLE = "RUSTFARM_CACHE_SOCKET"
TIMEOUT = 60


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


@dataclass(frozen=True)
class PoolCrates:
    socket_path: str
    bucket: str
    prefix: str

    @classmethod
    def from_request(cls, settings: dict | None) -> "PoolCrates | None":
        """From the request's ``pool_crates`` ({"bucket", "prefix"}), where the instance
        has a relay; None otherwise."""
        path = os.environ.get(SOCKET_VARIABLE)
        if not settings or not path:
            return None
        return cls(path, settings["bucket"], settings["prefix"])

    def _path(self, key: str, digest: str) -> str:
        return f"/{self.bucket}/{self.prefix}crates/{key}/{digest}.tar.gz"

    def _ask(self, method: str, path: str, body: bytes | None = None):
        connection = _UnixConnection(self.socket_path)
        try:
            connection.request(method, path, body=body,
                               headers={"Content-Length": str(len(body or b""))})
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()

    def fetch(self, cache: str, listings: dict[str, str]) -> tuple[list[str], list[str]]:
        """The entries of ``listings`` the bucket holds, put in ``cache`` once checked:
        their keys, and why others were not taken (absent ones say nothing)."""
        got, problems = [], []
        for key, digest in sorted(listings.items()):
            try:
                status, data = self._ask("GET", self._path(key, digest))
            except OSError as err:
                return got, problems + [f"the cache relay does not answer: {err}"]
            if status != 200:
                if status not in (403, 404):
                    problems.append(f"{key}: the bucket answered {status}")
                continue
            handle, archive = tempfile.mkstemp(prefix="pool-crate-", suffix=".tar.gz",
                                               dir=cache)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            keys, refused = receive(cache, archive, {key: digest})
            got += keys
            problems += refused
        return got, problems

    def share(self, cache: str, listings: dict[str, str]) -> tuple[int, list[str]]:
        """The entries of ``listings`` (in ``cache``) put in the bucket: how many, and
        why others were not (a read-only relay refuses every one)."""
        shared, problems = 0, []
        for key, digest in sorted(listings.items()):
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
                tar.add(os.path.join(cache, key), arcname=key, recursive=True)
            try:
                status, data = self._ask("PUT", self._path(key, digest), buffer.getvalue())
            except OSError as err:
                return shared, problems + [f"the cache relay does not answer: {err}"]
            if status == 200:
                shared += 1
            else:
                problems.append(f"{key}: {status} {data[:200].decode(errors='replace')}")
                if status == 403:
                    break       # read-only for this build: every other one would be too
        return shared, problems
