"""Every pool of farm.yaml, as Buildbot workers."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.runtime import Runtime
from rustfarm.workers.docker import docker_workers
from rustfarm.workers.local import local_workers


def all_workers(farm: Farm, runtime: Runtime) -> list:
    result = []
    for pool in farm.pools.values():
        if pool.kind == "local":
            result.extend(local_workers(pool))
        elif pool.kind == "docker":
            master = f"{runtime.container_master_address(farm)}:{farm.farm.worker_port}"
            # The farm's internal network exists on the local engine only.
            network = None if pool.remote else runtime.network
            result.extend(docker_workers(pool, master, network))
        else:
            raise NotImplementedError(f"worker pool kind {pool.kind!r}")
    return result
