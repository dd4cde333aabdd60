"""How the worker tool answers the master: one JSON object on standard output.

Every command prints exactly one object, its result, as the last thing it does;
what a person reads (progress, errors with their context) goes to standard error.
A failed command's object has ``"error"``, a sentence saying what went wrong, and
the command exits with status 1. The master reads the object with
:func:`read_answer`; the fields of each command's result are in its module.
"""

from __future__ import annotations

import json
import sys


class ProtocolError(ValueError):
    """Standard output that is not one answer of the worker tool."""


def say(line: str) -> None:
    """A line for the step's log."""
    print(line, file=sys.stderr, flush=True)


def answer(result: dict) -> None:
    """The command's result, for the master."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message: str, **fields) -> None:
    """End the command: ``message`` for the log and, with ``fields``, as the result."""
    say(f"error: {message}")
    answer({"error": message, **fields})
    sys.exit(1)


def read_answer(stdout: str) -> dict:
    """The result a command printed; ProtocolError when there is none."""
    text = stdout.strip()
    if not text:
        raise ProtocolError("the worker tool printed no result")
    try:
        result = json.loads(text)
    except ValueError as err:
        raise ProtocolError(f"the worker tool's result is not JSON: {err}") from None
    if not isinstance(result, dict):
        raise ProtocolError("the worker tool's result is not a JSON object")
    return result
