"""Every pool of farm.yaml, as Buildbot workers."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.workers.local import local_workers


def all_workers(farm: Farm) -> list:
    result = []
    for pool in farm.pools.values():
        if pool.kind == "local":
            result.extend(local_workers(pool))
        else:
            raise NotImplementedError(f"worker pool kind {pool.kind!r}")
    return result
