"""The supervisor's watch (cli/supervisor.py says what it does), run by `farm up` as
``python -m rustfarm.cli.supervising FARM_YAML``."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile import load
from rustfarm.runtime import Runtime

from .lifecycle import Farmhouse
from .lifecycle_lock import exclusively
from .processes import read_pid, stop_pid
from .supervisor import CHECK_INTERVAL, master_stopped_running, note


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
            # Never during a farm up, down or reload: this round is skipped instead.
            with exclusively(house.state.root, "the supervisor", wait=False) as held:
                if held:
                    check(house, router, homes, suspects)
        except FarmError as err:
            note(f"failed, tried again in {interval:.0f} s: {err}")
        time.sleep(interval)


def check(house, router, homes, suspects: set[str]) -> None:
    """One round: the router started if gone, each master that stopped started again."""
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


def main(argv: list[str] | None = None) -> int:
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
