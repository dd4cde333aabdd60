"""Starting a farm's local workers, each attached to one of this machine's masters with
the others (and those of other machines) to move to."""

from __future__ import annotations

import subprocess

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.plumbing import is_loopback
from rustfarm.progress import say
from rustfarm.state import SecretStore, worker_secret_name

from .processes import build_environment, console_script, read_pid
from .tacfiles import write_worker_tac


def local_worker_names(farm: Farm) -> list[str]:
    return [name for pool in farm.pools.values() if pool.kind == "local"
            for name in pool.worker_names()]


class LocalWorkerStarting:
    """Farmhouse's part that starts the local workers."""

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
        for index, name in enumerate(local_worker_names(farm)):
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
