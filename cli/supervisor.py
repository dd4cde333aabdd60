"""The watch `farm up` keeps over a farm of several masters: it restarts the WAMP router
when it exits, and the masters that stopped because they lost it.

A master that loses its router connection stops every service at once (Buildbot's
wamp/connector.py: "Guru meditation! We have been disconnected from wamp server") —
its running builds end RETRY, its web UI and worker ports close, its log says
"BuildMaster is stopped" — but its twistd process stays, doing nothing. So the
supervisor, every few seconds: starts the router (the one `farm up` runs, on loopback)
when its process is gone; then stops and starts again each master of this machine whose
process runs but whose log last said it stopped. A master whose process is gone (killed,
crashed) is left to `farm up`: the other masters take over its builds and workers
(master/failover.py), and a master that keeps dying is not started in a loop.

`farm up` starts it (``python -m rustfarm.cli.supervisor FARM_YAML``) with its pid file
and log in the state directory; `farm down` stops it before anything else.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.progress import say

from .processes import read_pid, stop_pid

CHECK_INTERVAL = 2.0
# The tail of a master's log read for its last start or stop.
LOG_TAIL_BYTES = 256 * 1024


def master_stopped_running(log: Path) -> bool:
    """True when the master's log last said "BuildMaster is stopped", after its last
    "BuildMaster is running"."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return False
    return tail.rfind("BuildMaster is stopped") > tail.rfind("BuildMaster is running")


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
                [sys.executable, "-m", "rustfarm.cli.supervisor", str(farm_yaml)],
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


def supervise(house, interval: float = CHECK_INTERVAL) -> None:
    """Watch ``house`` (a cli.lifecycle.Farmhouse) until stopped."""
    router = house.router
    homes = house.master_homes()
    note(f"watching {'the router and ' if router else ''}"
         f"{len(homes)} master(s): {', '.join(m.name for m, _ in homes)}")
    # A master that is just stopping (farm down, a signal) also logs "BuildMaster is
    # stopped" and exits a moment later: only one still there a check later is restarted.
    suspects: set[str] = set()
    # SIGTERM (farm down) ends the watch between two checks, never halfway through a start.
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    while not stopping:
        try:
            if router and not router.pid:
                note("the router is not running: starting it")
                router.start()
                note(f"the router runs again (pid {router.pid})")
            stopped = []
            for master, home in homes:
                pid = read_pid(home / "twistd.pid")
                if not (pid and master_stopped_running(home / "twistd.log")):
                    suspects.discard(master.name)
                elif master.name not in suspects:
                    suspects.add(master.name)
                else:
                    suspects.discard(master.name)
                    note(f"master {master.name} (pid {pid}) stopped its services (as when "
                         "it loses the router): restarting it")
                    stopped.append((master, home))
            for master, home in stopped:
                # Nothing is left to stop in it, and such a process may not heed SIGTERM
                # (a minute and more seen): it gets a few seconds before SIGKILL.
                stop_pid(home / "twistd.pid", f"master {master.name}", timeout=5)
            # All started at once, then waited for, as `farm up` does.
            starting = [(master, home, house.launch_master(master, home))
                        for master, home in stopped]
            for master, home, since in starting:
                house.wait_for_master(home, since)
                note(f"master {master.name} runs again (pid {read_pid(home / 'twistd.pid')})")
        except FarmError as err:
            note(f"failed, tried again in {interval:.0f} s: {err}")
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    from rustfarm.farmfile import load
    from rustfarm.runtime import Runtime

    from .lifecycle import Farmhouse

    [farm_yaml] = argv if argv is not None else sys.argv[1:]
    house = Farmhouse(load(Path(farm_yaml)))
    house.runs_with(Runtime.of(house.farm))
    try:
        supervise(house)
    except KeyboardInterrupt:
        pass
    note("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
