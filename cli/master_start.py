"""Starting a farm's master process and waiting until its log says it runs."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile.model import MasterSettings
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say

from .master_log import failure_reason
from .processes import port_in_use, read_pid
from .tacfiles import write_master_tac


class MasterStarting:
    """Farmhouse's part that starts a master."""

    def launch_master(self, master: MasterSettings, master_dir: Path) -> int:
        """Start a master's process; the offset of its log where this start's lines begin."""
        farm = self.farm
        several = farm.multi_master
        for host, port, key in ((farm.www.host, master.www_port,
                                 "masters" if several else "www.port"),
                                (self.runtime.worker_host(farm), master.worker_port,
                                 "masters" if several else "farm.worker_port")):
            if port and port_in_use(host, port):
                raise FarmError(f"cannot start the master: port {port} on {host} ({key} in "
                                f"{farm.path.name}) is already in use by another program")
        master_dir.mkdir(parents=True, exist_ok=True)
        pidfile = master_dir / "twistd.pid"
        # A master killed outright leaves its pid file, and maybe an unreaped
        # zombie that twistd would take for a running master.
        if read_pid(pidfile) is None:
            pidfile.unlink(missing_ok=True)
        configfile = Path(str(resources.files("rustfarm.master").joinpath("master.cfg")))
        write_master_tac(master_dir, configfile, farm.path, master.name)
        self.runtime.write(self.state.runtime_file)       # the master reads it from there
        # Left by farms whose database `buildbot upgrade-master` made; the master does it now.
        (master_dir / ".buildbot-version").unlink(missing_ok=True)
        log = master_dir / "twistd.log"
        since = log.stat().st_size if log.exists() else 0
        say(f"starting {'master ' + master.name if several else 'the master'} in {master_dir}")
        # What `buildbot start` runs, without the second it takes to start itself and the
        # one its `tail -F` of the log may take to see the master's "running" line.
        launched = subprocess.run([sys.executable, "-c",
                                   "from twisted.scripts import twistd; twistd.run()",
                                   "--no_save", "--logfile=twistd.log", "--python=buildbot.tac"],
                                  cwd=master_dir, capture_output=True, text=True)
        if launched.returncode != 0:
            raise FarmError("the master failed to start; from its log "
                            f"({log}):\n{failure_reason(log, since) or launched.stderr}")
        return since

    def wait_for_master(self, master_dir: Path, since: int) -> None:
        log = master_dir / "twistd.log"
        if not self.master_started(log, since, timeout=120, pidfile=master_dir / "twistd.pid"):
            raise FarmError("the master failed to start; from its log "
                            f"({log}):\n{failure_reason(log, since)}")

    def master_started(self, log: Path, since: int, timeout: float,
                       pidfile: Path | None = None) -> bool:
        """Wait for the master's log to say it runs: False when it failed or stopped; True
        also when it still starts after ``timeout`` (wait_until_ready waits on)."""
        pidfile = pidfile or self.state.master_pidfile

        def outcome() -> str | None:
            try:
                with log.open(errors="replace") as handle:
                    handle.seek(since)
                    text = handle.read()
            except OSError:
                text = ""
            if "BuildMaster is running" in text:
                return "running"
            if "BuildMaster startup failed" in text:
                return "failed"
            if pidfile.exists() and not read_pid(pidfile):
                return "stopped"
            return None

        try:
            return wait_until(outcome, timeout, "the master's start", interval=0.1) == "running"
        except DeadlinePassed:
            return read_pid(pidfile) is not None
