"""Every pool of farm.yaml, as Buildbot workers."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.runtime import Runtime
from rustfarm.state import StateDir
from rustfarm.workers.docker_pool import docker_workers
from rustfarm.workers.ec2 import ec2_workers
from rustfarm.workers.local import local_workers


def all_workers(farm: Farm, runtime: Runtime) -> list:
    result = []
    for pool in farm.pools.values():
        if pool.kind == "local":
            result.extend(local_workers(pool))
        elif pool.kind == "docker":
            # Local containers reach the master through the worker socket; a remote
            # engine's through farm.master_address.
            address = f"{runtime.container_master_address(farm)}:{farm.farm.worker_port}"
            result.extend(docker_workers(pool, address, StateDir.of(farm)))
        else:
            result.extend(ec2_workers(farm, pool))
    return result
