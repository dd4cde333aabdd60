"""The SHA-256 of a file, read in blocks: the worker tool's own, since the worker's
Python may be older than hashlib.file_digest (3.11)."""

from __future__ import annotations

import hashlib


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
