"""The ``workers`` section's pools: local, docker and ec2, each read and checked."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from rustfarm.userdata import value_problem

from .pool_kinds import (DEFAULT_COMPILE_CACHE, DEFAULT_STANDBY, DEFAULT_WARM_ENGINE_WAIT,
                         DOCKER_TLS_FILES, DockerEngine, DockerPool, Ec2Pool, LocalPool,
                         S3CompileCache)
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
    if docker_host:
        problem = _engine_url_problem(docker_host)
        if problem:
            s.error(s.key_line("docker_host"), f"workers.{name}.docker_host", problem)
    docker_hosts = _docker_hosts(name, s)
    if docker_host and s.has("docker_hosts"):
        s.error(s.key_line("docker_hosts"), f"workers.{name}.docker_hosts",
                "give docker_host (one engine) or docker_hosts (several), not both")
    docker_tls = s.text("docker_tls", "")
    if docker_tls:
        if docker_hosts or not docker_host.startswith("tcp://"):
            s.error(s.key_line("docker_tls"), f"workers.{name}.docker_tls",
                    "goes with a tcp:// docker_host (under docker_hosts each engine takes "
                    "its own tls)")
        docker_tls = _tls_directory(s, "docker_tls", f"workers.{name}.docker_tls",
                                    docker_tls, s.key_line("docker_tls"))
    count = s.integer("count", 2, minimum=1, maximum=MAX_WORKERS, why=_TOO_MANY_WORKERS)
    pool = DockerPool(name=name, count=count, docker_host=docker_host, cpus=None,
                      memory=memory, compile_cache=_compile_cache(name, s),
                      docker_hosts=docker_hosts, docker_tls=docker_tls,
                      image_registry=s.text("image_registry", "", check=_registry_problem),
                      warm_engine_wait=s.integer("warm_engine_wait", DEFAULT_WARM_ENGINE_WAIT,
                                                 minimum=0, maximum=3600),
                      standby=s.integer("standby", DEFAULT_STANDBY, minimum=0, maximum=86400))
    if isinstance(count, int) and len(docker_hosts) > count:
        s.error(s.key_line("docker_hosts"), f"workers.{name}.docker_hosts",
                f"{len(docker_hosts)} engines need a count of at least {len(docker_hosts)} "
                f"(one worker per engine at least), not {count}")
    # Docker refuses more CPUs than its machine has; a remote engine's are unknown here.
    cpus = s.number("cpus", None, minimum=0.01,
                    maximum=None if pool.remote else float(os.cpu_count() or 1),
                    why="Docker allows 0.01 up to the machine's CPU count")
    return replace(pool, cpus=cpus)


ENGINE_KEYS = ("url", "tls")


def _engine_url_problem(url: str) -> str:
    if not url.startswith(("unix://", "tcp://", "ssh://")):
        return f"must be a unix://, tcp:// or ssh:// URL, not '{url}'"
    parts = urlsplit(url)
    if parts.scheme == "unix" and (parts.netloc or not parts.path.startswith("/")) \
            or parts.scheme != "unix" and not parts.netloc:
        return f"names no engine: '{url}'"
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            return f"must be tcp://HOST:PORT, not '{url}'"
    return ""


def _docker_hosts(name: str, s: Section) -> tuple[DockerEngine, ...]:
    """``docker_hosts``: each engine a URL, or {url, tls} with the directory of its
    client's TLS files (a tcp:// engine)."""
    if not s.has("docker_hosts"):
        return ()
    value = s.raw("docker_hosts")
    path = f"workers.{name}.docker_hosts"
    if not isinstance(value, list) or not value:
        s.error(s.key_line("docker_hosts"), path, "must be a list of one or more engines "
                "(each a URL, or {url: tcp://..., tls: DIR})")
        return ()
    lines = getattr(value, "item_lines", [])
    engines, seen = [], {}
    for index, item in enumerate(value):
        line = lines[index] if index < len(lines) else s.key_line("docker_hosts")
        where = f"{path}[{index}]"
        if isinstance(item, str):
            url, tls = item, ""
        elif isinstance(item, dict):
            entry = Section(s.problems, s.filename, item, where, ENGINE_KEYS, line)
            url, tls = entry.text("url"), entry.text("tls", "")
            if isinstance(tls, str) and tls:
                if isinstance(url, str) and not url.startswith("tcp://"):
                    entry.error(entry.key_line("tls"), f"{where}.tls",
                                "only a tcp:// engine is spoken to with TLS")
                tls = _tls_directory(entry, "tls", f"{where}.tls", tls, entry.key_line("tls"))
        else:
            s.error(line, where, "must be a URL or {url: ..., tls: DIR}, not "
                    f"{type(item).__name__}")
            continue
        if not isinstance(url, str):
            continue
        problem = _engine_url_problem(url)
        if problem:
            s.error(line, f"{where}.url" if isinstance(item, dict) else where, problem)
            continue
        if url in seen:
            s.error(line, where, f"{url} is listed twice (also {path}[{seen[url]}])")
            continue
        seen[url] = index
        engines.append(DockerEngine(url=url, tls=tls or ""))
    return tuple(engines)


def _tls_directory(s: Section, key: str, path: str, value: str, line: int) -> str:
    """The absolute TLS directory (relative to farm.yaml), refused without its files."""
    directory = Path(value).expanduser()
    if not directory.is_absolute():
        directory = Path(s.filename).resolve().parent / directory
    if not directory.is_dir():
        s.error(line, path, f"{value} is not a directory (it holds "
                f"{', '.join(DOCKER_TLS_FILES)}, as DOCKER_CERT_PATH does)")
        return ""
    missing = [f for f in DOCKER_TLS_FILES if not (directory / f).is_file()]
    if missing:
        s.error(line, path, f"{value} lacks {', '.join(missing)} (a Docker client's TLS "
                f"directory holds {', '.join(DOCKER_TLS_FILES)})")
        return ""
    return str(directory)


def _registry_problem(value: str) -> str:
    host, _, port = value.rpartition(":")
    if "/" in value or "://" in value or not host or not port.isdigit():
        return f"must be HOST:PORT of a container registry, not '{value}'"
    return ""


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
    "docker": ("kind", "count", "docker_host", "docker_hosts", "docker_tls", "cpus",
               "memory", "compile_cache", "image_registry", "warm_engine_wait", "standby"),
    "ec2": ("kind", "max_instances", "region", "ami", "ami_name", "ami_owner", "instance_type",
            "spot", "max_spot_price", "spot_fallback", "subnet_id", "security_group_ids",
            "instance_profile", "keypair_name", "volume_size_gb", "tags", "idle_timeout",
            "connect_timeout", "image_registry", "memory", "cpus", "pids_limit",
            "max_lifetime", "endpoint_url", "compile_cache"),
}
POOL_KEYS_ALL = tuple(sorted({k for keys in POOL_KEYS.values() for k in keys}))

POOL_READERS = {"local": local_pool, "docker": docker_pool, "ec2": ec2_pool}
