"""Find out at `farm up` whether the farm's Docker engines answer (starting the
local one when it is not running and we may)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from rustfarm.farmfile import Farm
from rustfarm.farmfile.model import LOCAL_DOCKER_ENGINE
from rustfarm.progress import say
from rustfarm.runtime import Runtime

DOCKERD_WAIT = 60


def socket_missing(engine: str) -> bool:
    """A unix socket engine that nothing listens on: no socket file, or one left behind
    by an engine that stopped without removing it (a reboot keeps it where /var/run is
    not a tmpfs)."""
    if not engine.startswith("unix://"):
        return False
    path = Path(engine[len("unix://"):])
    if not path.exists():
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:
            return False    # no permission, say: the engine's answer tells more
    return False


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
    for pool in pools:
        host = pool.engine
        if host == LOCAL_DOCKER_ENGINE and socket_missing(host) and dockerd_log is not None:
            why = start_local_engine(dockerd_log)
            if why:
                return Runtime(docker=False, docker_off_reason=why)
        if socket_missing(host):
            return Runtime(docker=False,
                           docker_off_reason=f"no Docker engine answers at {host}: "
                                             "nothing listens on that socket")
        try:
            client = docker.DockerClient(base_url=host, timeout=10)
            client.ping()
        except (DockerException, OSError) as err:
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            return Runtime(docker=False,
                           docker_off_reason=f"no Docker engine answers at {host}: {reason}")
        client.close()
    return Runtime(docker=True)


def missing_images(farm: Farm) -> list[tuple[str, str]]:
    """(target@toolchain, image) of the images docker builds use that the engine lacks."""
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
            for key, image in farm.used_images(pool.name).items():
                try:
                    client.images.get(image)
                except ImageNotFound:
                    missing.append((key, image))
                except DockerException:
                    continue
        finally:
            client.close()
    return missing
