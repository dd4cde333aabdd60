"""What went wrong in a build's log, in the few lines a terminal should show.

rustc separates its diagnostics with blank lines; an error's block is its
``error[E0308]: ...`` line, the ``-->`` location and the source lines under
it. A failed test shows up in cargo test's ``---- name stdout ----`` section
(its panic message) and the ``test result: FAILED`` line. Warnings and cargo's
own chatter are left out.
"""

from __future__ import annotations

import re

ERROR_START = re.compile(r"^error(\[E\d{4}\])?: ")
# rustc's closing summaries, which say nothing the blocks have not said.
SUMMARY = re.compile(r"^error: (aborting due to|could not compile)")
TEST_SECTION = re.compile(r"^---- (\S+) stdout ----$")
TEST_RESULT = re.compile(r"^test result: FAILED\.")
BACKTRACE_NOTE = re.compile(r"^note: run with `RUST_BACKTRACE=")
# Buildbot adds these around a command's output in a stdio log.
HEADER_LINE = re.compile(r"^( (argv|environment|using PTY|watching logfiles): |"
                         r"program finished with exit code|elapsedTime=)")


def error_blocks(text: str) -> list[list[str]]:
    """rustc's error blocks, each a list of lines, in the order the log has them."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is not None:
            if not line.strip() or ERROR_START.match(line) or line.startswith("warning"):
                blocks.append(current)
                current = None
            else:
                current.append(line)
                continue
        if ERROR_START.match(line) and not SUMMARY.match(line):
            current = [line]
    if current is not None:
        blocks.append(current)
    return blocks


def failed_tests(text: str) -> list[list[str]]:
    """Each failed test's name line and what it printed (its panic message)."""
    tests: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        started = TEST_SECTION.match(line)
        if started:
            if current:
                tests.append(current)
            current = [f"test {started.group(1)} failed:"]
        elif current is not None:
            if line in ("failures:", "successes:") or line.startswith("---- "):
                tests.append(current)
                current = None
            elif line.strip() and not BACKTRACE_NOTE.match(line):
                current.append(f"  {line}")
    if current:
        tests.append(current)
    return tests


def error_lines(text: str, limit: int = 60) -> list[str]:
    """The log's errors and failed tests, at most ``limit`` lines; a last line says
    how many more there were. Falls back to the log's last lines when it has
    neither (a failure of another kind: a missing binary, a signal)."""
    blocks = error_blocks(text) + failed_tests(text)
    lines = [line for block in blocks for line in block]
    lines += [line for line in text.splitlines() if TEST_RESULT.match(line)]
    if not lines:
        tail = [line for line in text.splitlines()
                if line.strip() and not HEADER_LINE.match(line)]
        lines = tail[-min(limit, 15):]
    if len(lines) > limit:
        return lines[:limit] + [f"... ({len(lines) - limit} more lines in the log)"]
    return lines
