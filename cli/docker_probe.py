"""Find out at `farm up` whether the farm's Docker engines answer (starting the
local one when it is not running and we may)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from rustfarm.farmfile import Farm
from rustfarm.farmfile.pool_kinds import LOCAL_DOCKER_ENGINE
from rustfarm.progress import say
from rustfarm.runtime import Runtime
from rustfarm.plumbing import DeadlinePassed, docker_client, engine_error, wait_until

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
    try:
        wait_until(lambda: not socket_missing(LOCAL_DOCKER_ENGINE), DOCKERD_WAIT,
                   "dockerd did not start", interval=0.3)
    except DeadlinePassed as late:
        return f"{late} (see {log})"
    return None


def probe(farm: Farm, dockerd_log: Path | None = None) -> Runtime:
    pools = [p for p in farm.pools.values() if p.kind == "docker"]
    if not pools:
        return Runtime()
    try:
        from docker.errors import DockerException
    except ImportError:
        return Runtime(docker=False, docker_off_reason="the docker Python package is missing")
    for pool in pools:
        answering, why = [], ""
        for engine in pool.engines:
            host = engine.url
            if host == LOCAL_DOCKER_ENGINE and socket_missing(host) and dockerd_log is not None:
                started = start_local_engine(dockerd_log)
                if started:
                    why = started
                    continue
            if socket_missing(host):
                why = f"no Docker engine answers at {host}: nothing listens on that socket"
                continue
            try:
                client = docker_client(engine.url, engine.tls, timeout=10)
                client.ping()
            except (DockerException, OSError) as err:
                why = f"no Docker engine answers at {host}: {engine_error(err)}"
                continue
            client.close()
            answering.append(engine)
        if not answering:
            return Runtime(docker=False, docker_off_reason=why)
        if len(answering) < len(pool.engines):
            # The pool builds on the engines that answer; the master asks the others again.
            say(f"pool {pool.name}: {why}; skipped until it answers (the farm asks again "
                "every few seconds)")
    return Runtime(docker=True)


def missing_images(farm: Farm) -> list[tuple[str, str, str]]:
    """(pool, target@toolchain, image) of the images docker builds use that the pool's
    first engine lacks (where `farm images build` makes them, or they are pulled)."""
    from docker.errors import DockerException, ImageNotFound

    missing = []
    for pool in farm.pools.values():
        if pool.kind != "docker":
            continue
        try:
            client = docker_client(pool.engines[0].url, pool.engines[0].tls, timeout=10)
        except DockerException:
            continue
        try:
            for key, image in farm.used_images(pool.name).items():
                try:
                    client.images.get(image)
                except ImageNotFound:
                    missing.append((pool.name, key, image))
                except DockerException:
                    continue
        finally:
            client.close()
    return missing


def report_images_elsewhere(farm: Farm) -> None:
    """Say which images the other engines of a pool lack, and how they get there."""
    from docker.errors import DockerException

    for pool in farm.pools.values():
        if pool.kind != "docker" or len(pool.engines) < 2:
            continue
        images = sorted(set(farm.used_images(pool.name).values()))
        for engine in pool.engines[1:]:
            try:
                client = docker_client(engine.url, engine.tls, timeout=10)
                lacking = []
                for image in images:
                    try:
                        client.images.get(image)
                    except DockerException:
                        lacking.append(image)
                client.close()
            except DockerException:
                continue            # skipped: probe said so
            if not lacking:
                continue
            if pool.image_registry:
                say(f"pool {pool.name}: the engine at {engine.url} lacks {len(lacking)} of its "
                    f"images; a build there pulls its image from {pool.image_registry} first")
            else:
                say(f"pool {pool.name}: the engine at {engine.url} lacks {len(lacking)} of its "
                    "images and their builds fail there: set the pool's image_registry (and "
                    "`farm images push --registry` to it), or run `farm images pull "
                    f"--registry ...` with DOCKER_HOST={engine.url}")
