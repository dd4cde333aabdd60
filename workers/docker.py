"""A docker pool: every build in a fresh container of its target's image.

Each worker name runs one container at a time (N names, N parallel builds).
The image comes from the builder's ``image`` property, so one pool serves every
target. A named volume per (farm, project, target) keeps cargo's target
directory and the unpacked sources between containers, so only changed crates
recompile. Another per (farm, toolchain, target), shared by every project's
builds, is sccache's cache of compiled dependency crates: a crate one project
compiled is not compiled again by another (uploaded projects read it only).

Builds run other people's code, so on the local engine a container has no
network (it reaches the master through the worker socket mounted into it), no
capabilities, no way to gain privileges, a pids limit, and its worker password
comes in a file the entrypoint deletes, not in its environment.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from buildbot.interfaces import LatentWorkerCannotSubstantiate
from buildbot.plugins import util
from buildbot.worker.docker import DockerLatentWorker
from docker.errors import DockerException, NotFound
from twisted.internet import defer, threads
from twisted.python import log

from rustfarm.farmfile import DockerPool
from rustfarm.names import COMPILE_JOB_PROPERTY, is_upload_build
from rustfarm.state import StateDir, worker_secret_name
from rustfarm.targets import image_toolchain

# Inside the image: the mount point of the build cache (the image makes it,
# owned by rustbuild, so a new volume inherits that owner), of the worker
# socket's directory and of the container's own password file.
CACHE_DIR = "/home/rustbuild/cache"
# The shared compile cache's mount point (sccache's directory, made by the image).
COMPILE_CACHE_DIR = "/home/rustbuild/.cache/sccache"
SOCKET_DIR = "/run/rustfarm"
SECRET_DIR = "/run/rustfarm-worker"
RUSTBUILD_UID = 1000
PIDS_LIMIT = 4096
VOLUME_NAME_MAX = 200


def _volume_name(readable: str, *identity: str) -> str:
    """A volume name: readable, and unambiguous even when names contain '-' (farm a-b
    project c is not farm a project b-c), by a digest of what identifies it."""
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:10]
    return f"{readable[:VOLUME_NAME_MAX - 11]}-{digest}"


def cache_volume_name(farm: str, project: str, target: str) -> str:
    """The (farm, project, target) cache volume."""
    return _volume_name(f"rustfarm-{farm}-{project}-{target}", farm, project, target)


def upload_volume_name(farm: str, job: str, target: str) -> str:
    """An uploaded project's volume: its own, used by its one build and then removed, so
    no upload sees another's files (cache volumes are shared by a project's builds)."""
    digest = hashlib.sha256("\0".join((farm, job, target)).encode()).hexdigest()[:10]
    return f"{upload_volume_prefix(farm)}{job}-{digest}"


def upload_volume_prefix(farm: str) -> str:
    """What every upload volume of ``farm`` starts with (`farm down` removes those left)."""
    digest = hashlib.sha256(farm.encode()).hexdigest()[:8]
    return f"rustfarm-upload-{digest}-"


@util.renderer
def cache_volume(props) -> str:
    job = props.getProperty(COMPILE_JOB_PROPERTY)
    if job:
        return upload_volume_name(props.getProperty("farm"), job, props.getProperty("target"))
    return cache_volume_name(props.getProperty("farm"), props.getProperty("project"),
                             props.getProperty("target"))


def compile_cache_volume_name(farm: str, image: str, target: str) -> str:
    """The (farm, toolchain, target) compile cache that all projects' builds share: the
    toolchain as the image tag names it, or the whole image where the tag names none
    (a compiler the farm did not build is not mixed with another's)."""
    toolchain = image_toolchain(image)
    return _volume_name(f"rustfarm-{farm}-sccache-{toolchain or 'image'}-{target}",
                        farm, toolchain or image, target)


@util.renderer
def compile_cache_mount(props) -> str:
    """The compile cache as the build's container mounts it: read-only for an uploaded
    project (anyone's code), which uses the cache but cannot put crates in it."""
    volume = compile_cache_volume_name(props.getProperty("farm"), props.getProperty("image"),
                                       props.getProperty("target"))
    mode = ":ro" if is_upload_build(props) else ""
    return f"{volume}:{COMPILE_CACHE_DIR}{mode}"


def latent_container_name(worker: str, master_dir: Path) -> str:
    """The container Buildbot's DockerLatentWorker names for ``worker`` of the master
    in ``master_dir``, so `farm down` can find what a stopped master left."""
    master_name = f"{os.uname()[1]}:{os.path.abspath(master_dir)}"
    masterhash = hashlib.sha1(master_name.encode()).hexdigest()[:6]
    return f"buildbot-{worker}-{masterhash}".replace("_", "-")


def image_build_hint(image: str) -> str:
    """The command that builds a farm image, e.g. for rustfarm/mipsel-unknown-linux-gnu:1.96-..."""
    repository = image.rsplit(":", 1)[0] if ":" in image.rpartition("/")[2] else image
    if repository.startswith("rustfarm/"):
        toolchain = image_toolchain(image)
        return (f"farm images build --target {repository.split('/', 1)[1]}"
                + (f" --toolchain {toolchain}" if toolchain else ""))
    return f"docker pull {image} (or build it)"


def memory_bytes(size: str) -> int:
    """Docker's memory size ("4g", "512m", "1073741824") in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)", size.lower())
    if not match:
        raise ValueError(f"not a memory size: {size!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmg".index(unit or " ")) if unit != "b" \
        else int(float(number))


class FarmDockerLatentWorker(DockerLatentWorker):
    """Upstream's Docker latent worker, with the farm's image check, its
    isolation (see the module) and leftover containers removed at start."""

    def checkConfig(self, name, password, *args, worker_socket=None, secret_dir=None,
                    **kwargs):
        # The farm's own settings are not Buildbot's.
        super().checkConfig(name, password, *args, **kwargs)

    def reconfigService(self, name, password, docker_host, *args, worker_socket=None,
                        secret_dir=None, **kwargs):
        self.engine = docker_host
        # On the local engine: the master's socket and this worker's password
        # file, both on this machine; None for a remote engine.
        self.worker_socket = worker_socket
        self.secret_dir = Path(secret_dir) if secret_dir else None
        configured = defer.maybeDeferred(super().reconfigService, name, password, docker_host,
                                         *args, **kwargs)
        if not getattr(self, "_looked_for_leftovers", False):
            # A master killed before it could stop its containers leaves them
            # running: remove this worker's now, not when it is next used.
            self._looked_for_leftovers = True

            def remove_leftovers(result):
                threads.deferToThread(self._remove_leftover_container).addErrback(log.err)
                return result
            configured.addCallback(remove_leftovers)
        return configured

    def getContainerName(self):
        return latent_container_name(self.workername, Path(self.master.basedir))

    def start_instance(self, build):
        # An upload's build has a volume of its own, removed with its container.
        job = build.getProperty(COMPILE_JOB_PROPERTY)
        self._upload_volume = upload_volume_name(build.getProperty("farm"), job,
                                                 build.getProperty("target")) if job else None
        return super().start_instance(build)

    def stop_instance(self, fast=False):
        volume, self._upload_volume = getattr(self, "_upload_volume", None), None
        stopped = super().stop_instance(fast)
        if volume:
            stopped.addCallback(lambda _: threads.deferToThread(self._remove_volume, volume))
            stopped.addErrback(log.err, f"removing the upload volume {volume}")
        return stopped

    def _remove_volume(self, volume: str) -> None:
        client = self._getDockerClient({**self.client_args, "base_url": self.engine})
        try:
            client.remove_volume(volume, force=True)
        except NotFound:
            pass
        finally:
            client.close()

    def createEnvironment(self, build=None):
        env = super().createEnvironment(build)
        if self.secret_dir is not None:
            del env["WORKERPASS"]
            env["RUSTFARM_WORKERPASS_FILE"] = f"{SECRET_DIR}/password"
        if self.worker_socket:
            env["RUSTFARM_MASTER_SOCKET"] = f"{SOCKET_DIR}/{Path(self.worker_socket).name}"
        return env

    def _write_password_file(self) -> None:
        directory = self.secret_dir
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, RUSTBUILD_UID, RUSTBUILD_UID)
        os.chmod(directory, 0o700)
        path = directory / "password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.password.encode())
        finally:
            os.close(fd)
        os.chown(path, RUSTBUILD_UID, RUSTBUILD_UID)

    def _image_exists(self, client, name):
        # Upstream lists every image on the engine, three times per container start (a
        # quarter of a second each with a hundred images); one inspect answers the same.
        if ":" not in name.rpartition("/")[2]:
            return super()._image_exists(client, name)     # any tag of a repository
        try:
            client.inspect_image(name)
        except NotFound:
            return False
        return True

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
        if self.secret_dir is not None:
            self._write_password_file()
        return super()._thd_start_instance(docker_host, image, *args)

    def _remove_leftover_container(self) -> None:
        if not isinstance(self.engine, str):
            return
        try:
            client = self._getDockerClient({**self.client_args, "base_url": self.engine})
        except DockerException:
            return
        try:
            name = self.getContainerName()
            for found in client.containers(all=True, filters={"name": name}):
                if f"/{name}" in found["Names"]:
                    log.msg(f"removing {name}, left from an earlier run of the master")
                    try:
                        client.remove_container(found["Id"], v=True, force=True)
                    except NotFound:
                        pass
        except DockerException as err:
            log.msg(f"could not look for leftover containers of {self.name}: {err}")
        finally:
            client.close()


def docker_workers(pool: DockerPool, master_address: str, state: StateDir) -> list:
    """The pool's latent workers. ``master_address`` (HOST:PORT) is where a remote
    engine's containers reach the master; local ones use the worker socket."""
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
    if not pool.remote:
        hostconfig["network_mode"] = "none"
    workers = []
    for name in pool.worker_names():
        volumes = [util.Interpolate("%(kw:volume)s:%(kw:path)s", volume=cache_volume,
                                    path=CACHE_DIR)]
        if pool.compile_cache:
            volumes.append(compile_cache_mount)
        local = {}
        if not pool.remote:
            local = {"worker_socket": str(state.worker_socket),
                     "secret_dir": str(state.container_secret_dir(name))}
            volumes += [f"{state.worker_socket.parent}:{SOCKET_DIR}:ro",
                        f"{state.container_secret_dir(name)}:{SECRET_DIR}"]
        workers.append(FarmDockerLatentWorker(
            name,
            util.Secret(worker_secret_name(name)),
            docker_host=pool.engine,
            image=util.Property("image"),
            masterFQDN=master_address,
            volumes=volumes,
            hostconfig=hostconfig,
            followStartupLogs=False,
            # One build per container: it is stopped and removed right after.
            build_wait_timeout=0,
            max_builds=1,
            properties={"pool": pool.name},
            **local))
    return workers
