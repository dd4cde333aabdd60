"""What the rustc wrappers share: reading rustc's arguments, and ending as rustc ended."""

from __future__ import annotations

import os
import signal
import sys


def flag_values(args: list[str], flags: tuple[str, ...]) -> list | None:
    """rustc's arguments as (flag, value) pairs, for the flags asked for in either form
    ("--emit=x" or "--emit x"; a codegen setting "-Cname=value" or "-C name=value" as
    ("name", "value")), and (None, argument) for any other; None when a value is
    missing."""
    pairs = []
    words = iter(args)
    for arg in words:
        for flag in flags:
            if arg == flag:
                value = next(words, None)
                if value is None:
                    return None
            elif arg.startswith(flag + "="):
                value = arg[len(flag) + 1:]
            elif flag == "-C" and arg.startswith("-C"):
                value = arg[2:]
            else:
                continue
            if flag in ("-C", "--codegen"):
                flag, _, value = value.partition("=")
            pairs.append((flag, value))
            break
        else:
            pairs.append((None, arg))
    return pairs


def exit_as(code: int) -> None:
    """Exit with rustc's status, or die of the signal that killed it."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
