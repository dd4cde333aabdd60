"""A docker pool's worker: every build in a fresh container of its target's image.

Each worker name runs one container at a time; the image comes from the builder's
``image`` property, so one pool serves every target. A container on this machine has no
network, no capabilities and gets its worker password in a file, not its environment
(docker_pool.py); its volumes are docker_volumes.py's. An engine that does not answer is
skipped (engines.py); one that lacks a build's image pulls it from the pool's registry.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import time
from pathlib import Path

from buildbot.interfaces import (LatentWorkerCannotSubstantiate,
                                 LatentWorkerFailedToSubstantiate)
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import RequestException
from twisted.internet import defer, threads
from twisted.python import log

from rustfarm.names import IMAGE_ID_PROPERTY
from rustfarm.targets import image_toolchain

from .connection import PromptConnectionMixin
from rustfarm.plumbing import api_client, client_args, engine_error
from .engines import watch_of
from .buildbot_private import DockerWorkerPrivates, LatentWorkerPrivates
from .docker_volumes import (CACHE_VOLUME_PROPERTY, RUSTBUILD_UID, SECRET_DIR, SOCKET_DIR,
                             build_own_volume)
from .standby import Standby, StandbyMixin
from .stopped_builds import NothingStartsForStoppedBuilds


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


class FarmDockerLatentWorker(PromptConnectionMixin, NothingStartsForStoppedBuilds, StandbyMixin,
                             LatentWorkerPrivates, DockerWorkerPrivates):
    """Upstream's Docker latent worker, with the farm's image check, its
    isolation (see the module), standby containers (workers/standby.py) and
    leftover containers removed at start."""

    def checkConfig(self, name, password, *args, worker_socket=None, secret_dir=None,
                    engine_tls="", image_registry="", standby=0, cache_volume=None, **kwargs):
        # The farm's own settings are not Buildbot's.
        super().checkConfig(name, password, *args, **kwargs)

    def reconfigService(self, name, password, docker_host, *args, worker_socket=None,
                        secret_dir=None, engine_tls="", image_registry="", standby=0,
                        cache_volume=None, **kwargs):
        self.engine = docker_host
        self.cache_volume = cache_volume
        self.standby = standby
        self.engine_tls = engine_tls
        self.image_registry = image_registry
        # On an engine of this machine: the master's socket and this worker's password
        # file, both on this machine; None for a remote engine.
        self.worker_socket = worker_socket
        self.secret_dir = Path(secret_dir) if secret_dir else None
        configured = defer.maybeDeferred(super().reconfigService, name, password, docker_host,
                                         *args, **kwargs)

        def engine_client_args(result):
            # TLS for a tcp:// engine, the ssh client for ssh:// (both made here, not in
            # the configuration: Buildbot compares a worker's arguments on reconfig).
            extra = client_args(docker_host, engine_tls) if isinstance(docker_host, str) \
                else {}
            extra.pop("base_url", None)
            self.client_args.update(extra)
            return result
        configured.addCallback(engine_client_args)
        if not getattr(self, "_looked_for_leftovers", False):
            # A master killed before it could stop its containers leaves them
            # running: remove this worker's now, not when it is next used.
            self._looked_for_leftovers = True

            def remove_leftovers(result):
                threads.deferToThread(self._remove_leftover_container).addErrback(log.err)
                return result
            configured.addCallback(remove_leftovers)
        return configured

    def canStartBuild(self):
        # An engine that does not answer is skipped: the pool's other engines build.
        watch = watch_of(self.master)
        if watch is not None and not watch.answers(self.engine):
            return False
        return super().canStartBuild()

    def engine_client(self, client_args):
        return api_client(**client_args)

    def getContainerName(self):
        return latent_container_name(self.workername, Path(self.master.basedir))

    def substantiate(self, wfb, build):
        if build is not None and not isinstance(build, Standby) and self.cache_volume is not None:
            # Which volume holds the build's sources and target directory, for the UI;
            # the same whether the build starts a container or takes a standby one.
            try:
                volume = self.cache_volume.getRenderingFor(build)
            except ValueError as err:
                return defer.fail(LatentWorkerCannotSubstantiate(str(err)))
            build.setProperty(CACHE_VOLUME_PROPERTY, volume, "docker pool")
            if self.instance is not None and getattr(self, "image_id", ""):
                # A standby container, already running its image.
                build.setProperty(IMAGE_ID_PROPERTY, self.image_id, "docker pool")
        return super().substantiate(wfb, build)

    def start_instance(self, build):
        if isinstance(build, Standby):
            # No build yet: the container of the builder's last build, started again.
            if self.instance is not None:
                raise ValueError("instance active")
            self._upload_volume = self._starting_build = None
            # Upstream's start adds to the host config it is given: it gets a copy, and
            # the props stay as they were rendered for comparing with a build's.
            self.rendered_worker_props = build.props
            return threads.deferToThread(self.thd_start_container,
                                         *copy.deepcopy(build.props))
        # An upload's build, a reproduction and a pull request's build have a volume of
        # their own, removed with the container.
        try:
            self._upload_volume = build_own_volume(build)
        except ValueError:
            self._upload_volume = None      # refused as the volume is rendered
        self._starting_build = build
        watch = watch_of(self.master)
        if watch is not None:
            watch.built_on(build.builder.name, self.engine)
        skipped = watch.skipped(build.getProperty("pool")) if watch is not None else []
        if skipped:
            build.setProperty("docker_engines_skipped", "; ".join(skipped), "docker pool")
        self.image_id = ""
        started = super().start_instance(build)

        @started.addCallback
        def record_image(result):
            if self.image_id:
                build.setProperty(IMAGE_ID_PROPERTY, self.image_id, "docker pool")
            return result
        return started

    def standby_allowed(self, wfb) -> bool:
        # An upload's volume is its build's alone: no later build could use its container.
        return getattr(self, "_upload_volume", None) is None

    def stop_instance(self, fast=False):
        if self.instance is None:
            # A start that failed before its container existed (an engine that does not
            # answer, an image it cannot get): upstream returns early and keeps that
            # build's worker properties, so isCompatibleWithBuild refuses every other
            # builder's build on this worker until that builder builds here again.
            self.resetWorkerPropsOnStop()
        volume, self._upload_volume = getattr(self, "_upload_volume", None), None
        stopped = super().stop_instance(fast)
        if volume:
            stopped.addCallback(lambda _: threads.deferToThread(self._remove_volume, volume))
            stopped.addErrback(log.err, f"removing the upload volume {volume}")
        return stopped

    def _remove_volume(self, volume: str) -> None:
        client = self.engine_client({**self.client_args, "base_url": self.engine})
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

    def image_on_engine(self, client, name):
        # Upstream lists every image on the engine, three times per container start (a
        # quarter of a second each with a hundred images); one inspect answers the same.
        if ":" not in name.rpartition("/")[2]:
            return super().image_on_engine(client, name)     # any tag of a repository
        try:
            # Its id names exactly what the build runs, for the release's provenance.
            self.image_id = client.inspect_image(name).get("Id", "")
        except NotFound:
            return False
        return True

    def thd_start_container(self, docker_host, image, *args):
        try:
            client = self.engine_client({**self.client_args, "base_url": docker_host})
            try:
                present = self.image_on_engine(client, image)
                if not present and self.image_registry:
                    present = self._thd_pull(client, image)
            finally:
                client.close()
        except APIError:
            raise
        except (DockerException, RequestException, OSError) as err:
            why = engine_error(err)
            self._engine_failed(docker_host, why)
            # Failed-to-substantiate: the build is queued again (Buildbot's RETRY) and
            # goes to a worker whose engine answers.
            raise LatentWorkerFailedToSubstantiate(
                f"Docker engine {docker_host} does not answer ({why}): skipped until it "
                f"answers again; the build is queued again for the other engines of pool "
                f"{self.properties.getProperty('pool')}") from None
        if not present:
            # Cannot-substantiate fails the build at once instead of retrying forever.
            where = f" nor in the registry {self.image_registry}" if self.image_registry else ""
            raise LatentWorkerCannotSubstantiate(
                f"image {image} is not on the Docker engine at {docker_host}{where}; "
                f"build it with: {image_build_hint(image)}"
                + (f" and push it with: farm images push --registry {self.image_registry}"
                   if self.image_registry else ""))
        if self.secret_dir is not None:
            self._write_password_file()
        return super().thd_start_container(docker_host, image, *args)

    def _engine_failed(self, url: str, why: str) -> None:
        watch = watch_of(self.master)
        if watch is not None:
            self.master.reactor.callFromThread(watch.engine_failed, url, why)

    def _build_state(self, text: str) -> None:
        build = getattr(self, "_starting_build", None)
        if build is not None and getattr(build, "buildid", None) is not None:
            self.master.reactor.callFromThread(
                self.master.data.updates.setBuildStateString, build.buildid, text)

    def _thd_pull(self, client, image: str) -> bool:
        """Pull ``image`` onto this worker's engine from the pool's registry, with
        progress in the master's log; False when the registry lacks it."""
        remote = f"{self.image_registry}/{image}"
        repository, _, tag = remote.rpartition(":")
        log.msg(f"{self.name}: {image} is not on the Docker engine at {self.engine}; "
                f"pulling it from {self.image_registry}")
        self._build_state(f"pulling {image} onto {self.engine}")
        started = last = time.monotonic()
        layers: dict[str, str] = {}
        try:
            for chunk in client.pull(repository, tag=tag, stream=True, decode=True):
                if chunk.get("error"):
                    log.msg(f"{self.name}: pulling {remote} failed: {chunk['error']}")
                    return False
                if chunk.get("id"):
                    layers[chunk["id"]] = chunk.get("status", "")
                if time.monotonic() - last >= 10:
                    last = time.monotonic()
                    done = sum(1 for status in layers.values()
                               if status in ("Pull complete", "Already exists"))
                    log.msg(f"{self.name}: pulling {remote}: {done} of {len(layers)} layers "
                            f"done ({time.monotonic() - started:.0f} s)")
        except NotFound as err:
            log.msg(f"{self.name}: {remote} is not in the registry: {err.explanation or err}")
            return False
        except APIError as err:
            log.msg(f"{self.name}: pulling {remote} failed: {err.explanation or err}")
            return False
        name, _, tag = image.rpartition(":")
        client.tag(remote, name, tag)
        log.msg(f"{self.name}: pulled {image} onto {self.engine} from {self.image_registry} "
                f"in {time.monotonic() - started:.1f} s")
        self._build_state("starting worker")
        return True

    def _remove_leftover_container(self) -> None:
        if not isinstance(self.engine, str):
            return
        try:
            client = self.engine_client({**self.client_args, "base_url": self.engine})
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


