"""The pools of farm.yaml as typed values: local, docker (and its engines) and ec2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from rustfarm.plumbing import is_loopback, url_host

LOCAL_DOCKER_ENGINE = "unix:///var/run/docker.sock"


def numbered_workers(pool: str, count: int) -> tuple[str, ...]:
    """A pool's worker names: one per build it runs at once."""
    return tuple(f"{pool}-{i}" for i in range(1, count + 1))


@dataclass(frozen=True)
class LocalPool:
    name: str
    count: int
    kind: str = "local"

    def worker_names(self) -> tuple[str, ...]:
        return numbered_workers(self.name, self.count)


# A docker pool's shared compile cache's size, unless farm.yaml says (sccache's default).
DEFAULT_COMPILE_CACHE = "10g"


# The files a Docker client's TLS directory holds (as in DOCKER_CERT_PATH).
DOCKER_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def is_loopback_engine(url: str) -> bool:
    """An engine on this machine: its Unix socket, or TCP on a loopback address."""
    if url.startswith("unix://"):
        return True
    return url.startswith("tcp://") and is_loopback(url_host(url))


@dataclass(frozen=True)
class DockerEngine:
    """One Docker engine of a pool: its URL and, for tcp://, the directory of the
    client's TLS files (ca.pem, cert.pem, key.pem), or "" for none."""
    url: str
    tls: str = ""

    @property
    def on_this_machine(self) -> bool:
        """Its containers can mount the master's worker socket and run without network
        (a loopback tcp:// engine is spoken to like a remote one, but runs here)."""
        return is_loopback_engine(self.url)

    @property
    def remote(self) -> bool:
        return not self.on_this_machine


DEFAULT_WARM_ENGINE_WAIT = 30
# Seconds a container started after a build waits for its builder's next build.
DEFAULT_STANDBY = 300


@dataclass(frozen=True)
class DockerPool:
    name: str
    count: int
    docker_host: str
    cpus: float | None
    memory: str | None
    compile_cache: str | None = DEFAULT_COMPILE_CACHE   # per (toolchain, target); None: off
    kind: str = "docker"
    # docker_hosts: several engines, the workers spread over them; () means docker_host.
    docker_hosts: tuple[DockerEngine, ...] = ()
    docker_tls: str = ""            # TLS directory of a single tcp:// docker_host
    image_registry: str = ""        # HOST:PORT an engine lacking an image pulls it from
    # Several engines: seconds a request waits for a busy worker on the engine of its
    # builder's last build (its caches) before a free worker elsewhere takes it.
    warm_engine_wait: int = DEFAULT_WARM_ENGINE_WAIT
    # Seconds a fresh container, started after a builder's build, waits for that
    # builder's next build (workers/standby.py); 0: every build starts its own.
    standby: int = DEFAULT_STANDBY

    @property
    def engines(self) -> tuple[DockerEngine, ...]:
        """Every engine of the pool, in farm.yaml's order."""
        return self.docker_hosts or (DockerEngine(self.engine, self.docker_tls),)

    @property
    def remote(self) -> bool:
        """Some of its containers reach the master over the network (farm.master_address)."""
        return any(e.remote for e in self.engines)

    @property
    def local(self) -> bool:
        """Some of its containers run on this machine and use the worker socket."""
        return any(e.on_this_machine for e in self.engines)

    @property
    def engine(self) -> str:
        """The first Docker engine's URL: docker_host, or the local socket."""
        if self.docker_hosts:
            return self.docker_hosts[0].url
        return self.docker_host or LOCAL_DOCKER_ENGINE

    def worker_names(self) -> tuple[str, ...]:
        return numbered_workers(self.name, self.count)

    def worker_engines(self) -> dict[str, DockerEngine]:
        """Each worker's engine: round-robin, so the pool's builds use every engine."""
        engines = self.engines
        return {name: engines[index % len(engines)]
                for index, name in enumerate(self.worker_names())}


@dataclass(frozen=True)
class S3CompileCache:
    """An ec2 pool's shared compile cache: sccache's entries in an S3 bucket under a
    key prefix, reached by builds through each instance's relay (ami/README.md)."""
    bucket: str
    prefix: str
    region: str
    endpoint_url: str = ""           # "" is AWS's own S3 for the region


@dataclass(frozen=True)
class Ec2Pool:
    name: str
    max_instances: int
    region: str
    ami: str
    ami_name: str
    ami_owner: str
    instance_type: str
    spot: bool
    max_spot_price: float | None
    spot_fallback: str
    subnet_id: str
    security_group_ids: tuple[str, ...]
    instance_profile: str
    keypair_name: str
    volume_size_gb: int
    tags: Mapping[str, str]
    idle_timeout: int
    connect_timeout: int
    image_registry: str
    # The worker container's limits on the instance, and how long an instance may run.
    memory: str | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    max_lifetime: int | None = None
    endpoint_url: str = ""           # EC2's endpoint: "" is boto3's (region, environment)
    compile_cache: S3CompileCache | None = None
    kind: str = "ec2"

    def worker_names(self) -> tuple[str, ...]:
        return numbered_workers(self.name, self.max_instances)


Pool = Union[LocalPool, DockerPool, Ec2Pool]
