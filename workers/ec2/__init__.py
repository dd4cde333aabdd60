"""An ec2 pool of farm.yaml as Buildbot workers, plus the reaper of orphan instances."""

from __future__ import annotations

from buildbot.plugins import util

from rustfarm.farmfile import Ec2Pool, Farm
from rustfarm.state import worker_secret_name

from .launch import Ec2Launch
from .reaper import FarmEC2Reaper
from .worker import FarmEC2LatentWorker


def ec2_workers(farm: Farm, pool: Ec2Pool) -> list[FarmEC2LatentWorker]:
    launch = Ec2Launch.from_pool(farm, pool)
    return [FarmEC2LatentWorker(name, util.Secret(worker_secret_name(name)), launch,
                                build_wait_timeout=pool.idle_timeout, max_builds=1,
                                properties={"pool": pool.name})
            for name in pool.worker_names()]


def ec2_reapers(farm: Farm) -> list[FarmEC2Reaper]:
    regions = sorted({p.region for p in farm.pools.values() if p.kind == "ec2"})
    if not regions:
        return []
    # One endpoint for all of them (the farm file's loader sees to it).
    endpoint = next((p.endpoint_url for p in farm.pools.values() if p.kind == "ec2"), "")
    return [FarmEC2Reaper(farm=farm.farm.name, regions=regions, endpoint_url=endpoint or None)]
