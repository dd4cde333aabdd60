"""The chaos benchmark's faults beyond killing processes (benchmarks/chaos.py): its
docker pool's second engine stopped and started again, and its artifact store filled
until writes fail, then freed.

The second engine is a dockerd of the benchmark's own (tests/support/second_engine.py:
its own data root and network namespace, TLS on loopback) that takes its images from a
local registry the benchmark starts and pushes them to. The store is a tmpfs mounted in
a mount namespace of the benchmark's own (``unshare``), where every process of the farm
runs: the machine's mounts are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rustfarm.farmfile.pool_kinds import LOCAL_DOCKER_ENGINE
from rustfarm.images.registry import push_images
from rustfarm.plumbing import connect
from tests.support.registry import LocalRegistry, ensure_registry_binary
from tests.support.second_engine import SecondEngine

# Set in the benchmark's own mount namespace (it runs itself again inside one).
NAMESPACE_MARK = "RUSTFARM_CHAOS_NAMESPACE"
STORE_SIZE = "4g"
# How long a fault lasts before the part is given back.
OUTAGE_SECONDS = 30
# What a filled store keeps free: less than any archive needs.
LEFT_FREE = 64 * 1024


class EngineOutage:
    """The pool's second engine and the registry it pulls the targets' images from."""

    def __init__(self, root: Path):
        self.registry = LocalRegistry(root / "registry")
        self.engine: SecondEngine | None = None

    def start(self, targets: list[str]) -> str:
        """Started, the images pushed; the pool's farm.yaml lines for both engines."""
        ensure_registry_binary()
        self.registry.start()
        client = connect()
        try:
            push_images(client, self.registry.address, targets)
        finally:
            client.close()
        self.engine = SecondEngine(reaches=(self.registry.port,)).start()
        return (f"    image_registry: {self.registry.address}\n"
                f"    docker_hosts:\n      - {LOCAL_DOCKER_ENGINE}\n"
                f'      - {{url: "{self.engine.url}", tls: {self.engine.client_tls}}}\n')

    def inject(self) -> str:
        self.engine.stop()
        time.sleep(OUTAGE_SECONDS)
        self.engine.start()
        return f"engine: the second dockerd stopped for {OUTAGE_SECONDS} s, started again"

    def close(self) -> None:
        if self.engine is not None:
            self.engine.remove()
        self.registry.stop()        # with the tags the push left on the system engine


class StoreOutage:
    """The artifact store, a tmpfs of the namespace's own, filled and freed."""

    def __init__(self, store: Path):
        self.store = store

    @staticmethod
    def enter_namespace() -> None:
        """Run this program again in a mount namespace of its own, unless it is in one."""
        if os.environ.get(NAMESPACE_MARK):
            return
        if not shutil.which("unshare"):
            raise SystemExit("--full-store needs unshare (util-linux)")
        os.environ[NAMESPACE_MARK] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private",
                              sys.executable, *sys.argv])

    def mount(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_SIZE}", "tmpfs",
                        str(self.store)], check=True)

    def inject(self) -> str:
        filler = self.store / ".filler"
        free = shutil.disk_usage(self.store).free
        with filler.open("wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, max(0, free - LEFT_FREE))
        time.sleep(OUTAGE_SECONDS)
        filler.unlink()
        return f"store: filled for {OUTAGE_SECONDS} s ({free // 2**20} MiB), then freed"
