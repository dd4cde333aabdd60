"""A docker pool's latent workers as farm.yaml describes them: each bound to one of the
pool's engines in turn, with the containers' isolation and volumes."""

from __future__ import annotations


from buildbot.plugins import util

from rustfarm.farmfile import DockerPool
from rustfarm.names import (IMAGE_PROPERTY)
from rustfarm.state import StateDir, worker_secret_name

from .docker import FarmDockerLatentWorker
from .docker_volumes import (CACHE_DIR, CRATE_STORE_DIR, CRATE_STORE_PROPERTY, SECRET_DIR,
                             SOCKET_DIR, CacheVolume, compile_cache_mount)

PIDS_LIMIT = 4096



def docker_workers(pool: DockerPool, master_address: str, state: StateDir) -> list:
    """The pool's latent workers, each bound to one of its engines in turn.
    ``master_address`` (HOST:PORT) is where a remote engine's containers reach the
    master; those of an engine on this machine use the worker socket."""
    # No docker --init: the image's entrypoint starts tini itself, after removing the
    # worker password from the environment that process 1 (readable by builds) keeps.
    hostconfig: dict = {
        "init": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": PIDS_LIMIT,
    }
    if pool.cpus:
        hostconfig["nano_cpus"] = int(pool.cpus * 1e9)
    if pool.memory:
        hostconfig["mem_limit"] = pool.memory
        hostconfig["memswap_limit"] = pool.memory       # no swap: over the limit is over
    workers = []
    cache_volume = CacheVolume(state.master_name)
    for name, engine in pool.worker_engines().items():
        volumes = [util.Interpolate("%(kw:volume)s:%(kw:path)s",
                                    volume=cache_volume, path=CACHE_DIR)]
        if pool.compile_cache:
            volumes.append(compile_cache_mount)
        local = {}
        properties = {"pool": pool.name, "docker_engine": engine.url}
        config = dict(hostconfig)
        if engine.on_this_machine:
            config["network_mode"] = "none"
            local = {"worker_socket": str(state.worker_socket),
                     "secret_dir": str(state.container_secret_dir(name))}
            # Its builds read the crate store in place; other engines' are sent copies.
            properties[CRATE_STORE_PROPERTY] = CRATE_STORE_DIR
            volumes += [f"{state.worker_socket.parent}:{SOCKET_DIR}:ro",
                        f"{state.container_secret_dir(name)}:{SECRET_DIR}",
                        f"{state.crate_store}:{CRATE_STORE_DIR}:ro"]
        workers.append(FarmDockerLatentWorker(
            name,
            util.Secret(worker_secret_name(name)),
            docker_host=engine.url,
            engine_tls=engine.tls,
            image_registry=pool.image_registry,
            image=util.Property(IMAGE_PROPERTY),
            masterFQDN=master_address,
            volumes=volumes,
            hostconfig=config,
            followStartupLogs=False,
            # One build per container: it is stopped and removed right after (and
            # another started for the builder's next build, see workers/standby.py).
            build_wait_timeout=0,
            standby=pool.standby,
            cache_volume=cache_volume,
            max_builds=1,
            properties=properties,
            **local))
    return workers
