"""The watch `farm up` keeps over a farm of several masters: it restarts the WAMP router
when it exits, and the masters that stopped because they lost it.

A master that loses its router connection stops every service at once (Buildbot's
wamp/connector.py: "Guru meditation! We have been disconnected from wamp server") —
its running builds end RETRY, its web UI and worker ports close, its log says
"BuildMaster is stopped", or its stop hangs halfway (the router lost again while
builds stop) — but its twistd process stays, doing nothing. So the
supervisor, every few seconds: starts the router (the one `farm up` runs, on loopback)
when its process is gone; then stops and starts again each master of this machine whose
process runs but whose log last said it stopped or lost the router. A master whose process is gone (killed,
crashed) is left to `farm up`: the other masters take over its builds and workers
(master/failover.py), and a master that keeps dying is not started in a loop.

`farm up` starts it (``python -m rustfarm.cli.supervising FARM_YAML``, the watch
itself) with its pid file and log in the state directory; `farm down` stops it before
anything else. This module is the process's handle: what starts, finds and stops it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rustfarm.progress import say

from .processes import read_pid, stop_pid

CHECK_INTERVAL = 2.0
# The tail of a master's log read for its last start or stop.
LOG_TAIL_BYTES = 256 * 1024


# What a master's log says as it loses its router: its stop may then hang for good
# (seen when the router died while builds were stopping), the master doing nothing.
LOST_ROUTER = "Guru meditation! We have been disconnected from wamp server"


def master_stopped_running(log: Path) -> bool:
    """True when the master's log last said "BuildMaster is stopped", or that it lost
    the router, after its last "BuildMaster is running"."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return False
    return max(tail.rfind("BuildMaster is stopped"), tail.rfind(LOST_ROUTER)) > \
        tail.rfind("BuildMaster is running")


def note(message: str) -> None:
    say(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")


class Supervisor:
    """The supervisor's process, by its pid file and log in the state directory."""

    def __init__(self, state_root: Path):
        self.pidfile = state_root / "supervisor.pid"
        self.log = state_root / "supervisor.log"

    @property
    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    def start(self, farm_yaml: Path) -> int:
        if self.pid:
            return self.pid
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "rustfarm.cli.supervising", str(farm_yaml)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.pidfile.write_text(f"{process.pid}\n")
        return process.pid

    def stop(self) -> bool:
        return stop_pid(self.pidfile, "supervisor", timeout=30)

    def last_action(self) -> str:
        """The last line of its log: when, and what it last did."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""
