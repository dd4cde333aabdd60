"""Find out at `farm up` whether the farm's Docker engines answer, and prepare the
internal network its containers build in: containers on it reach the master
(at the network's gateway) and nothing else, so compiles run without network."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .farmfile import Farm
from .farmfile.model import LOCAL_DOCKER_ENGINE
from .progress import say
from .runtime import Runtime

def network_name(farm: Farm) -> str:
    return f"rustfarm-{farm.farm.name}"


DOCKERD_WAIT = 60


def socket_missing(engine: str) -> bool:
    return engine.startswith("unix://") and not Path(engine[len("unix://"):]).exists()


def start_local_engine(log: Path) -> str | None:
    """Start dockerd when its socket is missing and we are root; why not, else None."""
    if os.geteuid() != 0:
        return "no Docker engine runs and starting one needs root"
    dockerd = shutil.which("dockerd")
    if not dockerd:
        return "no Docker engine is installed (Debian: apt-get install docker.io)"
    say(f"starting the Docker engine (dockerd; log: {log})")
    with log.open("ab") as out:
        subprocess.Popen([dockerd], stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + DOCKERD_WAIT
    while time.monotonic() < deadline:
        if not socket_missing(LOCAL_DOCKER_ENGINE):
            return None
        time.sleep(0.3)
    return f"dockerd did not start within {DOCKERD_WAIT} s (see {log})"


def probe(farm: Farm, dockerd_log: Path | None = None) -> Runtime:
    pools = [p for p in farm.pools.values() if p.kind == "docker"]
    if not pools:
        return Runtime()
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return Runtime(docker=False, docker_off_reason="the docker Python package is missing")
    network, gateway = None, ""
    for pool in pools:
        host = pool.engine
        if host == LOCAL_DOCKER_ENGINE and socket_missing(host) and dockerd_log is not None:
            why = start_local_engine(dockerd_log)
            if why:
                return Runtime(docker=False, docker_off_reason=why)
        if socket_missing(host):
            return Runtime(docker=False,
                           docker_off_reason=f"no Docker engine answers at {host}: no such socket")
        try:
            client = docker.DockerClient(base_url=host, timeout=10)
            client.ping()
        except (DockerException, OSError) as err:
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            return Runtime(docker=False,
                           docker_off_reason=f"no Docker engine answers at {host}: {reason}")
        try:
            if not pool.remote and network is None:
                network, gateway = _internal_network(client, farm)
        finally:
            client.close()
    return Runtime(docker=True, network=network, master_address=gateway)


def _internal_network(client, farm: Farm) -> tuple[str, str]:
    name = network_name(farm)
    found = [n for n in client.networks.list(names=[name]) if n.name == name]
    net = found[0] if found else client.networks.create(
        name, driver="bridge", internal=True, labels={"rustfarm.farm": farm.farm.name})
    net.reload()
    return name, net.attrs["IPAM"]["Config"][0]["Gateway"]


def missing_images(farm: Farm) -> list[tuple[str, str]]:
    """(target, image) of the container targets whose pinned image the engine lacks."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    missing = []
    for pool in farm.pools.values():
        if pool.kind != "docker":
            continue
        try:
            client = docker.DockerClient(base_url=pool.engine, timeout=10)
        except DockerException:
            continue
        try:
            for target in farm.targets.values():
                if target.pool != pool.name:
                    continue
                try:
                    client.images.get(target.image)
                except ImageNotFound:
                    missing.append((target.triple, target.image))
                except DockerException:
                    continue
        finally:
            client.close()
    return missing
