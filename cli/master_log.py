"""What the master's log says: why it failed to start, how a reconfiguration ended."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say, summarised

_EXCEPTION_LINE = re.compile(r"^\s*([\w.]+(Error|Exception|Failure)[\w.]*): (.+)$")
_REASON_PATTERNS = re.compile(
    r"(error|Error|ERROR|CannotListen|Address already in use|could not|Traceback|Exception)")


def failure_reason(log: Path, since: int) -> str:
    """Why the master did not start, from what its log gained since offset ``since``."""
    try:
        with log.open(errors="replace") as handle:
            handle.seek(since)
            text = handle.read()
    except OSError:
        return f"(no log at {log})"
    # Drop twistd's "date time [system]" prefixes.
    return summarize_failure(re.sub(r"(?m)^\S+ \S+ \[[^]]*\] ", "", text))


@dataclass(frozen=True)
class Reconfig:
    applied: bool
    seconds: float = 0.0
    messages: tuple[str, ...] = ()


# Buildbot's last line of a reconfiguration (buildbot/master.py, doReconfig).
_RECONFIG_DONE = re.compile(r"(configuration update complete|configuration update aborted "
                            r"without making any changes|WARNING: configuration update "
                            r"partially applied; master may malfunction) \(took ([\d.]+) seconds\)")
_RECONFIG_BEGIN = "beginning configuration update"
_RECONFIG_ONGOING = re.compile(r"reconfig is ongoing for ([\d.]+) s")
_TWISTD_PREFIX = re.compile(r"(?m)^\S+ \S+ \[[^]]*\] ")


def wait_for_reconfig(log: Path, since: int, timeout: float) -> Reconfig:
    """Follow the master's log from offset ``since`` until its reconfiguration ends."""
    said = 0.0          # the longest "reconfig is ongoing" said so far

    def ended() -> Reconfig | None:
        nonlocal said
        try:
            with log.open(errors="replace") as handle:
                handle.seek(since if log.stat().st_size >= since else 0)   # rotated meanwhile
                text = _TWISTD_PREFIX.sub("", handle.read())
        except OSError:
            text = ""
        done = _RECONFIG_DONE.search(text)
        if done:
            if done.group(1) == "configuration update complete":
                return Reconfig(True, float(done.group(2)))
            body = text[text.find(_RECONFIG_BEGIN) + len(_RECONFIG_BEGIN):done.start()]
            lines = [line.strip() for line in body.splitlines()
                     if line.strip() and not _RECONFIG_ONGOING.search(line)]
            return Reconfig(False, float(done.group(2)),
                            tuple(summarised(lines)[-12:] + [done.group(1)]))
        ongoing = _RECONFIG_ONGOING.findall(text)
        if ongoing and float(ongoing[-1]) > said:
            said = float(ongoing[-1])
            say(f"  still reconfiguring ({said:.0f} s)")
        return None

    try:
        return wait_until(ended, timeout, "the master's reconfiguration", interval=0.2)
    except DeadlinePassed:
        raise FarmError(f"the master did not finish reloading within {timeout:.0f} s; "
                        f"see {log}") from None


def summarize_failure(output: str) -> str:
    """A Python failure's exception message, else the lines that look like errors."""
    config_errors = re.search(r"(?:Configuration Errors|Errors loading configuration):\s*\n"
                              r"((?:[ \t]+\S.*\n?)+)", output)
    if config_errors:
        return "configuration errors:\n" + "\n".join(
            summarised(line.strip() for line in config_errors.group(1).splitlines()))
    lines = [line.strip() for line in output.splitlines()]
    found = [m for m in map(_EXCEPTION_LINE.match, lines) if m]
    if found:
        last = found[-1]
        return f"{last.group(3)} ({last.group(1).rsplit('.', 1)[-1]})"
    picked = [line for line in lines if _REASON_PATTERNS.search(line)]
    return "\n".join(summarised(picked[-12:] or lines[-10:]))
