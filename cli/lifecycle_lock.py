"""One `farm up`, `farm down` or `farm reload` of a farm at a time, and no restart by
the supervisor during one: an exclusive lock on a file in the farm's state directory.

Without it a `farm down` that runs while a `farm up` is still starting a master stops
what it finds, and the `farm up` then starts a master and a supervisor that nothing
stops. The file names the holder, so whoever waits can say for what.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rustfarm.progress import say

LOCK_FILE = "lifecycle.lock"


@contextmanager
def exclusively(state_root: Path, action: str, wait: bool = True) -> Iterator[bool]:
    """Hold the farm's lifecycle lock for ``action``; True once held. With ``wait``
    false, yields False at once when another holds it."""
    state_root.mkdir(parents=True, exist_ok=True)
    with (state_root / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            handle.seek(0)
            holder = handle.read().strip() or "another command"
            say(f"waiting for {holder} to finish: one farm up, down or reload at a time")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{action} (pid {os.getpid()})\n")
        handle.flush()
        try:
            yield True
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
