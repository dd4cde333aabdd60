"""An ec2 pool of farm.yaml as Buildbot workers, plus the reaper of orphan instances."""

from __future__ import annotations

from buildbot.plugins import util

from rustfarm.farmfile import Ec2Pool, Farm
from rustfarm.state import worker_secret_name

from .ec2_reaper import FarmEC2Reaper
from .ec2_worker import FarmEC2LatentWorker


def ec2_workers(farm: Farm, pool: Ec2Pool) -> list[FarmEC2LatentWorker]:
    # Instances pull the target's image (rustfarm/<triple>:<tag>) from the pool's registry.
    image = util.Interpolate(f"{pool.image_registry.rstrip('/')}/%(prop:image)s")
    return [FarmEC2LatentWorker(
                name,
                util.Secret(worker_secret_name(name)),
                farm=farm.farm.name,
                pool=pool.name,
                region=pool.region,
                instance_type=pool.instance_type,
                image=image,
                master_host=farm.farm.master_address,
                master_port=farm.farm.worker_port,
                ami=pool.ami or None,
                ami_name=pool.ami_name or None,
                ami_owner=pool.ami_owner or None,
                spot=pool.spot,
                max_spot_price=pool.max_spot_price,
                spot_fallback=pool.spot_fallback,
                subnet_id=pool.subnet_id or None,
                security_group_ids=list(pool.security_group_ids) or None,
                instance_profile=pool.instance_profile or None,
                keypair_name=pool.keypair_name or None,
                volume_size_gb=pool.volume_size_gb,
                tags=dict(pool.tags),
                build_wait_timeout=pool.idle_timeout,
                connect_timeout=pool.connect_timeout,
                max_builds=1,
                properties={"pool": pool.name})
            for name in pool.worker_names()]


def ec2_reapers(farm: Farm) -> list[FarmEC2Reaper]:
    regions = sorted({p.region for p in farm.pools.values() if p.kind == "ec2"})
    if not regions:
        return []
    return [FarmEC2Reaper(farm=farm.farm.name, regions=regions)]
