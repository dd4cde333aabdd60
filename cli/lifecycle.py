"""`farm up`, `farm down`, `farm status`: start and stop exactly this farm's processes."""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.farmfile.model import MasterSettings
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say
from rustfarm.runtime import Adjusted, Runtime, effective_farm
from rustfarm.state import SecretStore, StateDir, ui_secret_name, worker_secret_name

from .api import FarmApi
from .containers import remove_containers
from .docker_probe import probe
from .image_check import build_missing_images
from .leftovers import clear_leftovers, describe
from .lifecycle_lock import exclusively
from .local_workers import LocalWorkerStarting, local_worker_names
from .master_log import failure_reason, wait_for_reconfig
from .master_start import MasterStarting
from .postgres import LocalServer, stop_local_server
from .processes import read_pid, stop_pid, stop_processes, wait_for_exit
from .router import Router, is_local
from .supervisor import Supervisor


@dataclass
class Farmhouse(MasterStarting, LocalWorkerStarting):
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
        return local_worker_names(self.farm)

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
        # The images a pool lacks are built after the lock is let go: a `farm down`
        # need not wait for them.
        with exclusively(self.state.root, "farm up"):
            self.start_all(wait)
        if self.runtime.uses_docker(self.farm):
            return build_missing_images(self.farm, build=build_images)
        return True

    def start_all(self, wait: float) -> None:
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
            # Before any build: nothing a build without a project left, and no cache of an
            # image no longer pinned, may be used again.
            for line in describe(clear_leftovers(
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

    def wait_until_ready(self, wait: float) -> None:
        api = self.api
        expected = set(Farmhouse(self.running).local_workers())

        def connected_workers() -> tuple[set[str]] | None:
            # A tuple: the set of connected workers may be empty (a farm of containers).
            for master, home in self.master_homes():
                if not read_pid(home / "twistd.pid"):
                    raise FarmError(f"master {master.name} stopped while starting; from its "
                                    "log:\n" + failure_reason(home / "twistd.log", 0))
            if not api.answers():
                return None
            connected = {w["name"] for w in api.workers()
                         if w["connected_to"] and not w["name"].startswith("__")}
            return (connected,) if expected <= connected else None

        try:
            [connected] = wait_until(connected_workers, wait, "the farm did not become ready",
                                     interval=0.15)
        except DeadlinePassed as late:
            raise FarmError(f"{late}; see {self.state.master_log} and "
                            f"{self.state.workers}/*/twistd.log") from None
        builders = api.builder_names()
        # In a farm of several masters, the first's own address (each serves its own
        # where farm.url is left at its default).
        url = self.farm.as_master(self.farm.masters[0].name).farm.url
        say(f"farm '{self.farm.farm.name}' is up: {url} "
            f"({len(builders)} builders, {len(connected)} workers connected); "
            f"target matrix: {url}#/targets")

    # -- reload ---------------------------------------------------------

    def reload(self, timeout: float = 300) -> bool:
        """Apply farm.yaml to the running master with Buildbot's reconfiguration: running
        builds go on; a configuration the master refuses leaves the running one in place."""
        with exclusively(self.state.root, "farm reload"):
            return self.reconfigure(timeout)

    def reconfigure(self, timeout: float) -> bool:
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
        with exclusively(self.state.root, "farm down"):
            self.stop_all(wait, timeout)

    def stop_all(self, wait: bool, timeout: float | None) -> None:
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
