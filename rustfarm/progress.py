"""Progress lines for long work: flushed at once, so they show up in logs and pipes."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def elapsed() -> str:
    return f"{time.monotonic() - _START:6.1f}s"
