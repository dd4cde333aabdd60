"""The farm's build containers on its docker pools' engines: their names, and their
removal when the farm stops (a stopped master leaves its running builds' ones).
``house`` is the farm's Farmhouse (cli/lifecycle.py)."""

from __future__ import annotations

from rustfarm.farmfile import Farm


def docker_pools(farm: Farm) -> list:
    return [p for p in farm.pools.values() if p.kind == "docker"]

def container_names(house, pool) -> dict[str, str]:
    """The containers this machine's masters name for a docker pool's workers:
    container name to worker name."""
    from rustfarm.workers.docker import latent_container_name
    return {latent_container_name(worker, home): worker
            for _, home in house.master_homes() for worker in pool.worker_names()}

def remove_containers(house) -> list[str]:
    """Remove the containers of this farm's docker workers that still exist."""
    from rustfarm.workers.docker_volumes import upload_volume_prefix
    pools = docker_pools(house.farm)
    if not pools:
        return []
    try:
        from docker.errors import DockerException
    except ImportError:
        return []
    from rustfarm.plumbing import docker_client
    removed = []
    for pool, engine in ((p, e) for p in pools for e in p.engines):
        try:
            client = docker_client(engine.url, engine.tls, timeout=20)
            names = container_names(house, pool)
            for container in client.containers.list(all=True):
                if container.name in names:
                    container.remove(force=True, v=True)
                    removed.append(container.name)
            # An upload's volume outlives its build only when the master stopped
            # before the build did.
            prefix = upload_volume_prefix(house.farm.farm.name)
            for volume in client.volumes.list(filters={"name": prefix}):
                if volume.name.startswith(prefix):
                    volume.remove(force=True)
        except DockerException:
            continue
        finally:
            if "client" in locals():
                client.close()
    return removed
