"""The ``workers`` section's pools: local, docker and ec2, each read and checked."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from rustfarm.userdata import value_problem

from .model import DEFAULT_COMPILE_CACHE, DockerPool, Ec2Pool, LocalPool, S3CompileCache
from .reader import Section

POOL_KINDS = ("local", "docker", "ec2")

# More would start more processes or containers than one machine should run.
MAX_WORKERS = 64
_TOO_MANY_WORKERS = "more workers than one machine can start"

DOCKER_MIN_MEMORY = 6 * 2**20
_SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def size_bytes(text: str) -> int | None:
    """Docker's size notation (4g, 512m, 100000) in bytes; None when it is not one."""
    match = re.match(r"^(\d+(?:\.\d+)?)([bkmg]?)$", text, re.IGNORECASE)
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()]) if match else None


def local_pool(name: str, s: Section) -> LocalPool:
    return LocalPool(name=name, count=s.integer("count", 1, minimum=1, maximum=MAX_WORKERS,
                                                why=_TOO_MANY_WORKERS))


def docker_pool(name: str, s: Section) -> DockerPool:
    memory = s.text("memory", None)
    size = size_bytes(memory) if memory else None
    if memory and size is None:
        s.error(s.key_line("memory"), f"workers.{name}.memory",
                f"must be a size such as 4g or 512m, not '{memory}'")
    elif size is not None and size < DOCKER_MIN_MEMORY:
        s.error(s.key_line("memory"), f"workers.{name}.memory",
                f"must be at least 6m (Docker's smallest memory limit), not '{memory}'")
    docker_host = s.text("docker_host", "")
    if docker_host and not docker_host.startswith(("unix://", "tcp://", "ssh://")):
        s.error(s.key_line("docker_host"), f"workers.{name}.docker_host",
                "must be a unix://, tcp:// or ssh:// URL")
    # Docker refuses more CPUs than its machine has; a remote engine's are unknown here.
    local = not docker_host.startswith(("tcp://", "ssh://"))
    cpus = s.number("cpus", None, minimum=0.01,
                    maximum=float(os.cpu_count() or 1) if local else None,
                    why="Docker allows 0.01 up to the machine's CPU count")
    return DockerPool(name=name, count=s.integer("count", 2, minimum=1, maximum=MAX_WORKERS,
                                                 why=_TOO_MANY_WORKERS),
                      docker_host=docker_host, cpus=cpus, memory=memory,
                      compile_cache=_compile_cache(name, s))


def _compile_cache(name: str, s: Section) -> str | None:
    """The size of the pool's shared compile cache per toolchain and target; None: off."""
    value = s.raw("compile_cache") if s.has("compile_cache") else DEFAULT_COMPILE_CACHE
    if value is False:
        return None
    text = str(value)
    size = size_bytes(text) if isinstance(value, (str, int)) and value is not True else None
    if size is None or size < 2**20:
        s.error(s.key_line("compile_cache"), f"workers.{name}.compile_cache",
                f"must be a size of at least 1m such as 10g, or false, not '{text}'")
        return None
    return text


def ec2_pool(name: str, s: Section) -> Ec2Pool:
    ami = s.text("ami", "")
    ami_name = s.text("ami_name", "")
    if not ami and not ami_name:
        s.error(s.line, f"workers.{name}", "give ami (an id) or ami_name (with ami_owner)")
    fallback = s.text("spot_fallback", "on-demand")
    if fallback not in ("on-demand", "fail"):
        s.error(s.key_line("spot_fallback"), f"workers.{name}.spot_fallback",
                "must be on-demand or fail")
    return Ec2Pool(
        name=name,
        max_instances=s.integer("max_instances", 1, minimum=1),
        region=s.text("region"),
        ami=ami, ami_name=ami_name, ami_owner=s.text("ami_owner", ""),
        instance_type=s.text("instance_type"),
        spot=s.flag("spot", False),
        max_spot_price=s.number("max_spot_price", None),
        spot_fallback=fallback,
        subnet_id=s.text("subnet_id", ""),
        security_group_ids=s.texts("security_group_ids", ()),
        instance_profile=s.text("instance_profile", ""),
        keypair_name=s.text("keypair_name", ""),
        volume_size_gb=s.integer("volume_size_gb", 30, minimum=8),
        tags=s.text_mapping("tags"),
        idle_timeout=s.integer("idle_timeout", 0, minimum=0),
        connect_timeout=s.integer("connect_timeout", 600, minimum=10),
        image_registry=s.text("image_registry"),
        # The boot script's rules (rustfarm/userdata.py): a value it would refuse is
        # refused here, with its line, rather than by an instance that powers off.
        memory=s.text("memory", None, check=_user_data_rule("memory")),
        cpus=s.number("cpus", None, minimum=0.01, maximum=9999),
        pids_limit=s.integer("pids_limit", None, minimum=64, maximum=999_999_999),
        max_lifetime=s.integer("max_lifetime", None, minimum=60, maximum=9_999_999,
                               why="seconds an instance may run its worker"),
        endpoint_url=s.text("endpoint_url", "", check=_endpoint_problem),
        compile_cache=_s3_compile_cache(name, s),
    )


S3_CACHE_KEYS = ("bucket", "prefix", "region", "endpoint_url")


def _s3_compile_cache(name: str, s: Section) -> S3CompileCache | None:
    """An ec2 pool's compile cache: off unless farm.yaml names a bucket."""
    if not s.has("compile_cache") or s.raw("compile_cache") is False:
        return None
    cache = Section(s.problems, s.filename, s.raw("compile_cache"),
                    f"workers.{name}.compile_cache", S3_CACHE_KEYS, s.key_line("compile_cache"))
    region = s.raw("region") if isinstance(s.raw("region"), str) else ""
    found = S3CompileCache(
        bucket=cache.text("bucket", check=_user_data_rule("cache_bucket")),
        prefix=cache.text("prefix", "rustfarm/", check=_user_data_rule("cache_prefix")),
        region=cache.text("region", region, check=_user_data_rule("cache_region")),
        endpoint_url=cache.text("endpoint_url", "", check=_user_data_rule("cache_endpoint")))
    return found if found.bucket else None


def _user_data_rule(key: str):
    def check(value: str) -> str:
        problem = value_problem(key, value)
        return f"{problem}, not '{value}'" if problem else ""
    return check


def _endpoint_problem(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return ""
    return f"must be an http:// or https:// URL, not '{value}'"


POOL_KEYS = {
    "local": ("kind", "count"),
    "docker": ("kind", "count", "docker_host", "cpus", "memory", "compile_cache"),
    "ec2": ("kind", "max_instances", "region", "ami", "ami_name", "ami_owner", "instance_type",
            "spot", "max_spot_price", "spot_fallback", "subnet_id", "security_group_ids",
            "instance_profile", "keypair_name", "volume_size_gb", "tags", "idle_timeout",
            "connect_timeout", "image_registry", "memory", "cpus", "pids_limit",
            "max_lifetime", "endpoint_url", "compile_cache"),
}
POOL_KEYS_ALL = tuple(sorted({k for keys in POOL_KEYS.values() for k in keys}))

POOL_READERS = {"local": local_pool, "docker": docker_pool, "ec2": ec2_pool}
