"""What this machine offers the farm at start: a Docker engine or not, and the farm
as it runs here.

`farm up` finds it out once (cli/docker_probe.py) and writes it to one file of the
state directory, ``master/runtime.env``; the master and the other commands read it
from there (``Runtime.of``). Without the file (a farm never started here) the farm
is taken as declared.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass
from pathlib import Path

from .farmfile import Farm, LocalPool
from .state import StateDir

DEFAULT_BRIDGE_GATEWAY = "172.17.0.1"


def host_triple() -> str:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                          platform.machine().lower())
    return f"{machine}-unknown-linux-gnu"


@dataclass(frozen=True)
class Runtime:
    docker: bool = True
    docker_off_reason: str = ""

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Runtime":
        """What ``write`` wrote; the farm as declared when there is nothing (readable)."""
        try:
            found = json.loads(path.read_text())
            return cls(docker=bool(found["docker"]),
                       docker_off_reason=str(found.get("docker_off_reason", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    @classmethod
    def of(cls, farm: Farm) -> "Runtime":
        """What the last `farm up` of this farm found."""
        return cls.read(StateDir.of(farm).runtime_file)

    def worker_host(self, farm: Farm) -> str:
        """Where the master's worker port listens: local workers and local
        containers (through the worker socket) need loopback only."""
        return farm.farm.worker_host or "127.0.0.1"

    def container_master_address(self, farm: Farm) -> str:
        """Where a remote engine's containers reach the master."""
        return farm.farm.master_address or DEFAULT_BRIDGE_GATEWAY

    def uses_docker(self, farm: Farm) -> bool:
        return self.docker and any(p.kind == "docker" for p in farm.pools.values())


@dataclass(frozen=True)
class Adjusted:
    farm: Farm
    moved: tuple[str, ...] = ()      # targets moved to local workers
    disabled: tuple[str, ...] = ()   # targets no pool can build here


def without_docker(farm: Farm) -> Adjusted:
    """The farm when no Docker engine answers: the host's target moves to a local
    pool (one is added if farm.yaml has none); other container targets are left out."""
    docker_pools = {name for name, pool in farm.pools.items() if pool.kind == "docker"}
    if not docker_pools:
        return Adjusted(farm)
    pools = {name: pool for name, pool in farm.pools.items() if name not in docker_pools}
    local = next((name for name, pool in pools.items() if pool.kind == "local"), None)
    if local is None:
        local = "local"
        pools[local] = LocalPool(name=local, count=1)
    targets, moved, disabled = {}, [], []
    for triple, target in farm.targets.items():
        if target.pool not in docker_pools:
            targets[triple] = target
        elif triple == host_triple():
            targets[triple] = dataclasses.replace(target, pool=local, runner="native")
            moved.append(triple)
        else:
            disabled.append(triple)
    projects = {name: dataclasses.replace(p, targets=tuple(t for t in p.targets if t in targets))
                for name, p in farm.projects.items()}
    # Uploads never build on this machine: a target moved to a local pool is not theirs.
    compile_targets = tuple(t for t in farm.compile.targets
                            if t in targets and t not in moved)
    adjusted = dataclasses.replace(farm, pools=pools, targets=targets, projects=projects,
                                   compile=dataclasses.replace(farm.compile,
                                                               targets=compile_targets))
    return Adjusted(adjusted, tuple(moved), tuple(disabled))


def effective_farm(farm: Farm, runtime: Runtime) -> Adjusted:
    return Adjusted(farm) if runtime.docker else without_docker(farm)


def running_farm(farm: Farm) -> Farm:
    """The farm as its master runs it on this machine: farm.yaml with what the last
    `farm up` found applied (targets left out without Docker)."""
    return effective_farm(farm, Runtime.of(farm)).farm
