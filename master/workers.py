"""Every pool of farm.yaml, as Buildbot workers."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.runtime import Runtime
from rustfarm.workers.docker import docker_workers
from rustfarm.workers.ec2 import ec2_workers
from rustfarm.workers.local import local_workers


def all_workers(farm: Farm, runtime: Runtime) -> list:
    result = []
    for pool in farm.pools.values():
        if pool.kind == "local":
            result.extend(local_workers(pool))
        elif pool.kind == "docker":
            # The farm's internal network exists on the local engine only; its
            # containers reach the master at the network's gateway.
            network = None if pool.remote else runtime.network
            address = runtime.container_master_address(farm, on_farm_network=bool(network))
            result.extend(docker_workers(pool, f"{address}:{farm.farm.worker_port}", network))
        else:
            result.extend(ec2_workers(farm, pool))
    return result
