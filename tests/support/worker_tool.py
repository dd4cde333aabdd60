"""The worker tool as workers run it: the farm's zip application in a directory, run
with a command, its JSON answer read as the master reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rustfarm.worker_tool.protocol import ProtocolError, read_answer
from rustfarm.worker_tool_file import write_tool


def tool_in(directory: Path) -> Path:
    return write_tool(directory)


def run_tool(tool: Path, *args, env: dict | None = None, cwd: Path | None = None,
             input: bytes | str | None = None) -> tuple[subprocess.CompletedProcess, dict | None]:
    """``python3 TOOL ARGS``: the process and its answer (None when it printed none)."""
    done = subprocess.run([sys.executable, str(tool), *map(str, args)], env=env, cwd=cwd,
                          input=input.encode() if isinstance(input, str) else input,
                          capture_output=True)
    try:
        answer = read_answer(done.stdout.decode())
    except ProtocolError:
        answer = None
    return done, answer
