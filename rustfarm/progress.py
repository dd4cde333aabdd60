"""Progress lines for long work, flushed at once so they show up in logs and pipes:
single lines (``say``), and for image builds and pushes a follower that prints
milestones of a command's output, a heartbeat with its latest line while it is
silent, and the duration at the end."""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from collections import deque
from typing import Callable, Iterable, TextIO

_START = time.monotonic()


def plural(count: int, noun: str) -> str:
    """"1 project", "2 projects"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


SCREEN_LINES = 20       # the most lines one message of the farm's takes
LINE_WIDTH = 400        # and the most characters of one of its lines
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|\d+")


def _shortened(line: str) -> str:
    if len(line) <= LINE_WIDTH:
        return line
    return f"{line[:LINE_WIDTH - 40]}… ({len(line) - LINE_WIDTH + 40} characters more)"


def summarised(lines: Iterable[str], examples: int = 3) -> list[str]:
    """Problems to print, at most a screen of them: lines that differ only in their quoted
    names and numbers (2,000 "Unknown builder '…' in scheduler '…'") are shown by their
    first ``examples`` and a count of the rest, and no line is longer than LINE_WIDTH."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(_VARYING.sub("…", line), []).append(line)
    shown: list[str] = []
    for similar in groups.values():
        shown += [_shortened(line) for line in similar[:examples]]
        if len(similar) > examples:
            shown.append(f"… and {plural(len(similar) - examples, 'more problem')} like these")
    if len(shown) > SCREEN_LINES:
        more = len(shown) - SCREEN_LINES + 1
        shown = shown[:SCREEN_LINES - 1] + [f"… and {plural(more, 'more line')}"]
    return shown


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def elapsed() -> str:
    return f"{time.monotonic() - _START:6.1f}s"


TAIL_LINES = 30


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s"


class Progress:
    def __init__(self, out: TextIO | None = None, verbose: bool = False,
                 heartbeat: float = 20.0):
        self.out = out or sys.stdout
        self.verbose = verbose
        self.heartbeat = heartbeat

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def follow(self, label: str, lines: Iterable[str],
               is_milestone: Callable[[str], bool] = lambda line: False) -> deque:
        """Consume output lines, printing milestones (all lines when verbose) and
        a heartbeat during silence; returns the last lines. An exception raised
        by the iterator is raised here, with the tail kept on ``exc.tail``."""
        events: queue.Queue = queue.Queue()

        def pump():
            try:
                for line in lines:
                    events.put(("line", line))
                events.put(("end", None))
            except BaseException as exc:  # handed to the caller's thread
                events.put(("error", exc))

        threading.Thread(target=pump, daemon=True).start()
        tail: deque = deque(maxlen=TAIL_LINES)
        started = last_said = time.monotonic()
        while True:
            try:
                kind, item = events.get(timeout=1.0)
            except queue.Empty:
                now = time.monotonic()
                if now - last_said >= self.heartbeat:
                    latest = tail[-1].strip()[:100] if tail else "waiting for output"
                    self.say(f"    {label}: {duration(now - started)} so far; {latest}")
                    last_said = now
                continue
            if kind == "end":
                return tail
            if kind == "error":
                item.tail = tail
                raise item
            for line in item.splitlines():
                if not line.strip():
                    continue
                tail.append(line)
                if self.verbose or is_milestone(line):
                    self.say(f"    {line}")
                    last_said = time.monotonic()
