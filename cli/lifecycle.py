"""`farm up`, `farm down`, `farm status`: start and stop exactly this farm's processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.farmfile.model import MasterSettings
from rustfarm.plumbing import is_loopback
from rustfarm.progress import say
from rustfarm.runtime import Adjusted, Runtime, effective_farm
from rustfarm.state import SecretStore, StateDir, ui_secret_name, worker_secret_name

from .api import FarmApi
from .containers import remove_containers
from .docker_probe import probe
from .image_check import build_missing_images
from .leftovers import clear_projectless_leftovers, describe
from .master_log import failure_reason, wait_for_reconfig
from .postgres import LocalServer, stop_local_server
from .processes import (console_script, build_environment, port_in_use, read_pid, stop_pid,
                        stop_processes, wait_for_exit)
from .router import Router, is_local
from .supervisor import Supervisor
from .tacfiles import write_master_tac, write_worker_tac


@dataclass
class Farmhouse:
    """The processes of one farm, found through its state directory."""

    farm: Farm
    # The farm as it runs on this machine: what `farm up` found (runtime), and farm.yaml
    # with it applied (adjusted), worked out once by runs_with.
    runtime: Runtime = field(default_factory=Runtime)
    adjusted: Adjusted | None = None

    def runs_with(self, runtime: Runtime) -> Farm:
        self.runtime = runtime
        self.adjusted = effective_farm(self.farm, runtime)
        return self.adjusted.farm

    @property
    def running(self) -> Farm:
        if self.adjusted is None:
            return self.runs_with(Runtime.of(self.farm))
        return self.adjusted.farm

    @property
    def state(self) -> StateDir:
        return StateDir.of(self.farm)

    @property
    def api(self) -> FarmApi:
        return FarmApi.for_farm(self.farm.as_master(self.farm.masters[0].name))

    def master_homes(self) -> list[tuple[MasterSettings, Path]]:
        """The masters this machine runs, each with its directory: the state directory's
        master/ for a farm of one, masters/<name> for each of several whose host is
        empty or this machine's name (the others run on theirs)."""
        if not self.farm.multi_master:
            return [(self.farm.masters[0], self.state.master)]
        here = ("", socket.gethostname(), socket.getfqdn())
        return [(m, self.state.root / "masters" / m.name) for m in self.farm.masters
                if m.host in here]

    @property
    def database_server(self) -> LocalServer | None:
        """The PostgreSQL server `farm up` runs: farm.yaml's, with ``server: local``."""
        return LocalServer(self.state, self.farm.db) if self.farm.db.runs_locally else None

    @property
    def router(self) -> Router | None:
        """The router `farm up` runs: farm.yaml's, when it is on this machine."""
        router = self.farm.router
        return Router(self.state.root, router) if router and is_local(router) else None

    def running_masters(self) -> dict[str, int]:
        return {m.name: pid for m, home in self.master_homes()
                if (pid := read_pid(home / "twistd.pid"))}

    def local_workers(self) -> list[str]:
        return [name for pool in self.farm.pools.values() if pool.kind == "local"
                for name in pool.worker_names()]

    def all_workers(self) -> list[str]:
        return [name for pool in self.farm.pools.values() for name in pool.worker_names()]

    # -- up -------------------------------------------------------------

    def up(self, wait: float = 90, build_images: bool = True) -> bool:
        if not self.master_homes():
            hosts = ", ".join(sorted({m.host for m in self.farm.masters}))
            raise FarmError(
                f"no master of {self.farm.path.name} runs on this machine "
                f"({socket.gethostname()}): its masters' hosts are {hosts}. Run farm up "
                "on those machines, or give a master this machine's name as its host")
        self.state.create()
        if self.database_server:
            self.database_server.start()
        if self.router:
            self.router.start()
        running = self.running_masters()
        if len(running) == len(self.master_homes()):
            say(f"master already running (pid {', '.join(map(str, running.values()))})")
            self.runs_with(Runtime.of(self.farm))
            self.ensure_secrets()
            self.finish_starting_local_workers(self.start_local_workers())
        else:
            self.runs_with(probe(self.farm, dockerd_log=self.state.root / "dockerd.log"))
            self.report_runtime()
            self.ensure_secrets()
            # Before any build: nothing a build without a project left may be used again.
            for line in describe(clear_projectless_leftovers(
                    self.farm, self.state, self.runtime.uses_docker(self.farm))):
                say(line)
            # Those of several masters that stopped (a lost router stops a master) start again.
            stopped = [(m, home) for m, home in self.master_homes() if m.name not in running]
            started = {master.name: self.launch_master(master, home)
                       for master, home in stopped}
            # Started with the master: each waits for its port, then connects at once.
            starting = self.start_local_workers()
            try:
                for master, home in stopped:
                    self.wait_for_master(home, started[master.name])
            except BaseException:
                for started in starting.values():
                    started.kill()
                raise
            self.finish_starting_local_workers(starting)
        self.wait_until_ready(wait)
        self.start_supervisor()
        if self.runtime.uses_docker(self.farm):
            return build_missing_images(self.farm, build=build_images)
        return True

    @property
    def supervisor(self) -> Supervisor | None:
        """With several masters, the process that restarts the router and the masters
        that stopped with it (cli/supervisor.py)."""
        return Supervisor(self.state.root) if self.farm.multi_master else None

    def start_supervisor(self) -> None:
        if self.supervisor and self.master_homes() and not self.supervisor.pid:
            pid = self.supervisor.start(self.farm.path)
            say(f"started the supervisor (pid {pid}): it restarts the router and the masters "
                f"that stop with it; log {self.supervisor.log}")

    def ensure_secrets(self) -> None:
        """A password for every worker (also those added without Docker) and UI user."""
        store = SecretStore(self.state.secrets)
        for name in set(self.all_workers()) | set(Farmhouse(self.running).all_workers()):
            store.ensure(worker_secret_name(name))
        for user in self.farm.www.users:
            if store.ensure(ui_secret_name(user)):
                say(f"created a password for web UI user '{user}' in "
                    f"{store.path(ui_secret_name(user))} (change it: farm passwd {user})")

    def report_runtime(self) -> None:
        runtime, adjusted = self.runtime, self.adjusted
        if runtime.docker:
            if runtime.uses_docker(self.farm):
                through = ("its master's socket in " + str(self.state.root / "run")
                           if self.farm.multi_master else str(self.state.worker_socket))
                say("Docker engine answers: builds run in containers without network,"
                    f" reaching the master through {through}")
            return
        say(f"{runtime.docker_off_reason}; falling back to local workers")
        for triple in adjusted.moved:
            say(f"  {triple}: builds on local workers instead")
        if adjusted.disabled:
            say(f"  not built until a Docker engine answers: {', '.join(adjusted.disabled)}")

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with log.open(errors="replace") as handle:
                    handle.seek(since)
                    text = handle.read()
            except OSError:
                text = ""
            if "BuildMaster is running" in text:
                return True
            if "BuildMaster startup failed" in text:
                return False
            if pidfile.exists() and not read_pid(pidfile):
                return False
            time.sleep(0.1)
        return read_pid(pidfile) is not None

    def start_local_workers(self) -> dict[str, subprocess.Popen]:
        """Start the local workers not running yet (all at once: each `buildbot-worker
        start` takes most of a second). Each start returns once its worker reaches the
        master's port (cli/tacfiles.py)."""
        farm = self.running
        store = SecretStore(self.state.secrets)
        host = self.runtime.worker_host(farm)
        starting = {}
        # Several masters share the workers out: each worker attaches to one of them.
        ports = [m.worker_port for m, _ in self.master_homes()] if self.farm.multi_master \
            else [farm.farm.worker_port]
        elsewhere = self.masters_elsewhere(host)
        for index, name in enumerate(Farmhouse(farm).local_workers()):
            basedir = self.state.worker(name)
            if read_pid(basedir / "twistd.pid"):
                continue
            # Its own master first, then the others of this machine in turn (the next one
            # first), then those of other machines.
            own = index % len(ports)
            write_worker_tac(basedir, "127.0.0.1" if host == "0.0.0.0" else host,
                             ports[own], name, store.path(worker_secret_name(name)),
                             other_ports=tuple(ports[own + 1:] + ports[:own]),
                             elsewhere=elsewhere)
            starting[name] = subprocess.Popen(
                [console_script("buildbot-worker"), "start", "--quiet", str(basedir)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=build_environment())
        return starting

    def masters_elsewhere(self, worker_host: str) -> tuple[tuple[str, int], ...]:
        """The worker ports of the farm's masters on other machines, where a local worker
        goes when this machine's masters are lost: only where masters listen for workers
        beyond loopback (``farm.worker_host``), as those on other machines then do."""
        # An empty worker_host is the default, 127.0.0.1.
        if not self.farm.multi_master or not worker_host or is_loopback(worker_host):
            return ()
        here = {m.name for m, _ in self.master_homes()}
        return tuple((m.host, m.worker_port) for m in self.farm.masters if m.name not in here)

    def finish_starting_local_workers(self, starting: dict[str, subprocess.Popen]) -> None:
        for name, started in starting.items():
            output, _ = started.communicate()
            if started.returncode != 0:
                raise FarmError(f"local worker {name} failed to start:\n{output}"[-2000:])
            say(f"started local worker {name}")

    def wait_until_ready(self, wait: float) -> None:
        api = self.api
        deadline = time.monotonic() + wait
        expected = set(Farmhouse(self.running).local_workers())
        while time.monotonic() < deadline:
            for master, home in self.master_homes():
                if not read_pid(home / "twistd.pid"):
                    raise FarmError(f"master {master.name} stopped while starting; from its "
                                    "log:\n" + failure_reason(home / "twistd.log", 0))
            if api.answers():
                connected = {w["name"] for w in api.workers()
                             if w["connected_to"] and not w["name"].startswith("__")}
                if expected <= connected:
                    builders = api.builder_names()
                    say(f"farm '{self.farm.farm.name}' is up: {self.farm.farm.url} "
                        f"({len(builders)} builders, {len(connected)} workers connected); "
                        f"target matrix: {self.farm.farm.url}plugins/matrix/")
                    return
            time.sleep(0.15)
        raise FarmError(f"the farm did not become ready within {wait:.0f} s; see "
                        f"{self.state.master_log} and {self.state.workers}/*/twistd.log")

    # -- reload ---------------------------------------------------------

    def reload(self, timeout: float = 300) -> bool:
        """Apply farm.yaml to the running master with Buildbot's reconfiguration: running
        builds go on; a configuration the master refuses leaves the running one in place."""
        pid = read_pid(self.state.master_pidfile)
        if pid is None:
            raise FarmError(f"the farm is not running; `farm up` starts it with "
                            f"{self.farm.path.name}")
        self.runs_with(Runtime.of(self.farm))
        self.ensure_secrets()          # new workers and users need theirs first
        log = self.state.master_log
        since = log.stat().st_size if log.exists() else 0
        say(f"reloading {self.farm.path.name} into the running master (pid {pid})")
        os.kill(pid, signal.SIGHUP)
        outcome = wait_for_reconfig(log, since, timeout)
        if outcome.applied:
            say(f"the master now runs {self.farm.path.name} (reconfigured in "
                f"{outcome.seconds:.1f} s)")
            self.finish_starting_local_workers(self.start_local_workers())
            self.wait_until_ready(120)
            return True
        say(f"the master refused {self.farm.path.name} and keeps its running configuration:")
        for line in outcome.messages:
            say(f"  {line}")
        return False

    # -- down -----------------------------------------------------------

    def down(self, wait: bool = False, timeout: float | None = None) -> None:
        """Stop the master first, so no build starts after this: running builds
        end RETRY and are built again after the next `farm up` (Buildbot's quick
        shutdown), or with ``wait`` finish first (its clean shutdown). Then the
        local workers, then whatever container of this farm is left."""
        stopped = False
        # First, so that it starts nothing this stops.
        if self.supervisor and self.supervisor.stop():
            say("stopped the supervisor")
            stopped = True
        master = read_pid(self.state.master_pidfile)
        if master and wait:
            say("waiting for the running builds to finish; no new build starts "
                "(queued builds run after the next `farm up`)")
            os.kill(master, signal.SIGUSR1)
            if not wait_for_exit(master, timeout):
                raise FarmError(f"builds still running after {timeout:.0f} s; the master "
                                "keeps shutting down when they end (or run `farm down`)")
            self.state.master_pidfile.unlink(missing_ok=True)
            say("stopped the master")
            stopped = True
        for master, home in self.master_homes()[1:]:
            if stop_pid(home / "twistd.pid", f"master {master.name}", timeout=timeout or 60):
                say(f"stopped master {master.name}")
                stopped = True
        if self.farm.multi_master:
            master, home = self.master_homes()[0]
            if stop_pid(home / "twistd.pid", f"master {master.name}", timeout=timeout or 60):
                say(f"stopped master {master.name}")
                stopped = True
        stopped |= stop_processes(self.state, timeout)
        # After the masters; whatever farm.yaml says now, the server of its state directory.
        if stop_local_server(self.state):
            say("stopped PostgreSQL")
            stopped = True
        if self.router and self.router.stop():
            say("stopped the WAMP router")
            stopped = True
        removed = remove_containers(self)
        if removed:
            say(f"removed {len(removed)} container(s) left running: {', '.join(removed)}")
            stopped = True
        if not stopped:
            say(f"farm '{self.farm.farm.name}' was not running")
