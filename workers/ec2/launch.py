"""What an EC2 pool's workers launch: one value, made from farm.yaml's pool and
validated in one place.

The farm builds it from the pool farm.yaml describes (``Ec2Launch.from_pool``,
whose values the farm file's loader has already checked with the same rules);
a master.cfg written by hand builds it directly, and the worker's checkConfig
reports ``problems()`` as configuration errors. The rules for what travels in
user-data (image, master, limits) are the boot script's own (rustfarm/userdata.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from buildbot.process.properties import Interpolate

from rustfarm.farmfile import Ec2Pool, Farm
from rustfarm.farmfile.pool_kinds import S3CompileCache
from rustfarm.userdata import value_problem
from rustfarm.names import IMAGE_PROPERTY

from .api import connection_problems, tag_problems

SPOT_FALLBACKS = ("on-demand", "fail")


@dataclass(frozen=True)
class Ec2Launch:
    farm: str
    pool: str
    region: str
    instance_type: Any            # text, or a renderable (rendered per build)
    image: Any                    # the worker container's image: text or a renderable
    master_host: str
    master_port: int
    ami: str | None = None
    ami_name: str | None = None
    ami_owner: str | None = None
    spot: bool = False
    max_spot_price: float | None = None
    spot_fallback: str = "on-demand"
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile: str | None = None
    keypair_name: str | None = None
    volume_size_gb: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # The worker container's limits on the instance, and the instance's lifetime.
    container_memory: str | None = None
    container_cpus: float | str | None = None
    container_pids_limit: int | None = None
    max_lifetime: int | None = None
    connect_timeout: float = 600
    running_check_interval: float = 60
    # Where EC2 answers and who asks: None is boto3's own (environment, instance role).
    endpoint_url: Any = None
    aws_access_key_id: Any = None
    aws_secret_access_key: Any = None
    aws_session_token: Any = None
    # The shared compile cache the instances' relay serves to builds; None: none.
    compile_cache: S3CompileCache | None = None

    @classmethod
    def from_pool(cls, farm: Farm, pool: Ec2Pool) -> "Ec2Launch":
        return cls(
            farm=farm.farm.name, pool=pool.name, region=pool.region,
            instance_type=pool.instance_type,
            # Instances pull the target's image (rustfarm/<triple>:<tag>) from the registry.
            image=Interpolate(f"{pool.image_registry.rstrip('/')}/%(prop:{IMAGE_PROPERTY})s"),
            master_host=farm.farm.master_address, master_port=farm.farm.worker_port,
            ami=pool.ami or None, ami_name=pool.ami_name or None,
            ami_owner=pool.ami_owner or None, spot=pool.spot,
            max_spot_price=pool.max_spot_price, spot_fallback=pool.spot_fallback,
            subnet_id=pool.subnet_id or None,
            security_group_ids=tuple(pool.security_group_ids),
            instance_profile=pool.instance_profile or None,
            keypair_name=pool.keypair_name or None, volume_size_gb=pool.volume_size_gb,
            tags=dict(pool.tags), container_memory=pool.memory, container_cpus=pool.cpus,
            container_pids_limit=pool.pids_limit, max_lifetime=pool.max_lifetime,
            connect_timeout=pool.connect_timeout, endpoint_url=pool.endpoint_url or None,
            compile_cache=pool.compile_cache)

    @property
    def user_data_options(self) -> dict:
        """The optional user-data settings given: the container's limits, the lifetime,
        the compile cache."""
        options = {"memory": self.container_memory, "cpus": self.container_cpus,
                   "pids_limit": self.container_pids_limit, "max_lifetime": self.max_lifetime}
        cache = self.compile_cache
        if cache is not None:
            options.update(cache_bucket=cache.bucket, cache_prefix=cache.prefix,
                           cache_region=cache.region, cache_endpoint=cache.endpoint_url or None)
        return {key: value for key, value in options.items() if value is not None}

    def problems(self) -> list[str]:
        """What is wrong, one message each; empty when the launch can be tried."""
        found = []

        def text(arg: str, value) -> bool:
            if not value or not isinstance(value, str):
                found.append(f"{arg} must be a non-empty string")
                return False
            return True

        for arg in ("farm", "pool", "region"):
            text(arg, getattr(self, arg))
        if text("master_host", self.master_host) and value_problem("master", self.master_host):
            found.append(f"master_host {value_problem('master', self.master_host)}")
        if not isinstance(self.master_port, int) or not 1 <= self.master_port <= 65535:
            found.append("master_port must be a TCP port number")
        # Renderables compare lazily (== makes a renderable): ask for text first.
        if self.instance_type is None or (isinstance(self.instance_type, str)
                                          and not self.instance_type):
            found.append("instance_type is required")
        if self.image is None or (isinstance(self.image, str) and not self.image):
            found.append("image (the worker's container image) is required")
        elif isinstance(self.image, str) and value_problem("image", self.image):
            found.append(f"image {self.image!r} {value_problem('image', self.image)}")
        if bool(self.ami) == bool(self.ami_name):
            found.append("give either ami (an AMI id) or ami_name (with ami_owner)")
        if self.ami_name and not self.ami_owner:
            found.append("ami_name needs ami_owner (an account id, 'self' or 'amazon'), so "
                         "that nobody else's image can match")
        if not isinstance(self.spot, bool):
            found.append("spot must be true or false")
        if self.spot_fallback not in SPOT_FALLBACKS:
            found.append(f"spot_fallback must be one of {', '.join(SPOT_FALLBACKS)}")
        if self.max_spot_price is not None and (
                not isinstance(self.max_spot_price, (int, float)) or self.max_spot_price <= 0):
            found.append("max_spot_price must be a positive number (USD per hour)")
        if isinstance(self.security_group_ids, str) or not all(
                isinstance(g, str) for g in self.security_group_ids):
            found.append("security_group_ids must be a list of strings")
        if self.volume_size_gb not in (None, 0) and (
                not isinstance(self.volume_size_gb, int) or self.volume_size_gb < 1):
            found.append("volume_size_gb must be a whole number of GiB")
        found += tag_problems(self.tags)
        for arg, key, value in (("container_memory", "memory", self.container_memory),
                                ("container_cpus", "cpus", self.container_cpus),
                                ("container_pids_limit", "pids_limit", self.container_pids_limit),
                                ("max_lifetime", "max_lifetime", self.max_lifetime)):
            if value is not None and value_problem(key, str(value)):
                found.append(f"{arg} {value_problem(key, str(value))}")
        for arg in ("connect_timeout", "running_check_interval"):
            if not isinstance(getattr(self, arg), (int, float)):
                found.append(f"{arg} must be a number of seconds")
        if isinstance(self.connect_timeout, (int, float)) and self.connect_timeout <= 0:
            found.append("connect_timeout must be positive")
        found += connection_problems(self.endpoint_url, self.aws_access_key_id,
                                     self.aws_secret_access_key)
        return found
