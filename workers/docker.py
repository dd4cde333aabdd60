"""A docker pool: every build in a fresh container of its target's image.

Each worker name runs one container at a time (N names, N parallel builds).
The image comes from the builder's ``image`` property, so one pool serves every
target. A named volume per (project, target) keeps cargo's target directory and
the unpacked sources between containers, so only changed crates recompile.
"""

from __future__ import annotations

from buildbot.interfaces import LatentWorkerCannotSubstantiate
from buildbot.plugins import util
from buildbot.worker.docker import DockerLatentWorker

from rustfarm.farmfile import DockerPool
from rustfarm.state import worker_secret_name

# Inside the image: the worker's home, and the mount point of the build cache
# (the image makes it, owned by rustbuild, so a new volume inherits that owner).
CACHE_DIR = "/home/rustbuild/cache"
CACHE_VOLUME = util.Interpolate("rustfarm-%(prop:farm)s-%(prop:project)s-%(prop:target)s")


def image_build_hint(image: str) -> str:
    """The command that builds a farm image, e.g. for rustfarm/mipsel-unknown-linux-gnu:tag."""
    repository = image.rsplit(":", 1)[0]
    if repository.startswith("rustfarm/"):
        return f"farm images build --target {repository.split('/', 1)[1]}"
    return f"docker pull {image} (or build it)"


class FarmDockerLatentWorker(DockerLatentWorker):
    """Upstream's Docker latent worker, with the farm's image check and cache volume."""

    def _thd_start_instance(self, docker_host, image, *args):
        client = self._getDockerClient({**self.client_args, "base_url": docker_host})
        try:
            present = self._image_exists(client, image)
        finally:
            client.close()
        if not present:
            # Cannot-substantiate fails the build at once instead of retrying forever.
            raise LatentWorkerCannotSubstantiate(
                f"image {image} is not on the Docker engine at {docker_host}; "
                f"build it with: {image_build_hint(image)}")
        return super()._thd_start_instance(docker_host, image, *args)


def docker_workers(pool: DockerPool, master_address: str, network: str | None) -> list:
    # No docker --init: the image's entrypoint starts tini itself, after removing the
    # worker password from the environment that process 1 (readable by builds) keeps.
    hostconfig: dict = {"init": False}
    if pool.cpus:
        hostconfig["nano_cpus"] = int(pool.cpus * 1e9)
    if pool.memory:
        hostconfig["mem_limit"] = pool.memory
    if network:
        hostconfig["network_mode"] = network
    return [FarmDockerLatentWorker(
                name,
                util.Secret(worker_secret_name(name)),
                docker_host=pool.engine,
                image=util.Property("image"),
                masterFQDN=master_address,
                volumes=[util.Interpolate("%(kw:volume)s:%(kw:path)s", volume=CACHE_VOLUME,
                                          path=CACHE_DIR)],
                hostconfig=hostconfig,
                followStartupLogs=False,
                # One build per container: it is stopped and removed right after.
                build_wait_timeout=0,
                max_builds=1,
                properties={"pool": pool.name})
            for name in pool.worker_names()]
