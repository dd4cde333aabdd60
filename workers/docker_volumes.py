"""The volumes a docker pool's containers mount, and where: a cache volume per (farm,
project, target) kept between containers so only changed crates recompile, an upload's
own volume, and the compile cache per (farm, toolchain, target) all projects share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from buildbot.interfaces import IRenderable
from buildbot.plugins import util
from zope.interface import implementer

from rustfarm.names import (FARM_PROPERTY, IMAGE_PROPERTY, PROJECT_PROPERTY,
                            TARGET_PROPERTY, is_reproduction, is_upload_build, upload_job)
from rustfarm.targets import image_toolchain


# Inside the image: the mount point of the build cache (the image makes it,
# owned by rustbuild, so a new volume inherits that owner), of the worker
# socket's directory and of the container's own password file.
CACHE_DIR = "/home/rustbuild/cache"
# The shared compile cache's mount point (a directory the image makes for it).
COMPILE_CACHE_DIR = "/home/rustbuild/.cache/sccache"
# Where a container sees the farm's crate store, read-only (rustfarm/crate_store.py).
CRATE_STORE_DIR = "/home/rustbuild/crates"
SOCKET_DIR = "/run/rustfarm"
SECRET_DIR = "/run/rustfarm-worker"
RUSTBUILD_UID = 1000
VOLUME_NAME_MAX = 200
# The build property that names the volume a build's container mounts at CACHE_DIR.
CACHE_VOLUME_PROPERTY = "cache_volume"


def _volume_name(readable: str, *identity: str) -> str:
    """A volume name: readable, and unambiguous even when names contain '-' (farm a-b
    project c is not farm a project b-c), by a digest of what identifies it."""
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:10]
    return f"{readable[:VOLUME_NAME_MAX - 11]}-{digest}"


def cache_volume_name(farm: str, project: str, target: str, master: str = "") -> str:
    """The (farm, project, target) cache volume; in a farm of several masters, each
    master's own: the lock that makes a builder's builds take turns on its volume is a
    master's (Buildbot has no lock across masters), and two builds unpacking different
    revisions into one directory could ship one's binaries as the other's."""
    if master:
        return _volume_name(f"rustfarm-{farm}-{master}-{project}-{target}",
                            farm, project, target, master)
    return _volume_name(f"rustfarm-{farm}-{project}-{target}", farm, project, target)


def upload_volume_name(farm: str, job: str, target: str) -> str:
    """An uploaded project's volume: its own, used by its one build and then removed, so
    no upload sees another's files (cache volumes are shared by a project's builds)."""
    digest = hashlib.sha256("\0".join((farm, job, target)).encode()).hexdigest()[:10]
    return f"{upload_volume_prefix(farm)}{job}-{digest}"


def reproduction_volume_name(farm: str, project: str, target: str) -> str:
    """The volume of a rebuild that checks a release reproduces: not the project's cache
    volume (another path, nothing left from earlier builds); removed with its container."""
    digest = hashlib.sha256("\0".join((farm, project, target)).encode()).hexdigest()[:16]
    return f"{upload_volume_prefix(farm)}verify-{digest}"


def upload_volume_prefix(farm: str) -> str:
    """What every volume of one build (an upload's, a reproduction's) of ``farm`` starts
    with (`farm down` removes those left)."""
    digest = hashlib.sha256(farm.encode()).hexdigest()[:8]
    return f"rustfarm-upload-{digest}-"


@implementer(IRenderable)
@dataclass(frozen=True)
class CacheVolume:
    """A build's volume: its upload's own, or its (project, target) cache volume on the
    master ``master`` ("" in a farm of one master)."""

    master: str = ""

    def getRenderingFor(self, props) -> str:
        farm, target = props.getProperty(FARM_PROPERTY), props.getProperty(TARGET_PROPERTY)
        if is_upload_build(props):
            job = upload_job(props)
            if not job:
                raise ValueError("an upload builder's build without its upload's job")
            return upload_volume_name(farm, job, target)
        project = props.getProperty(PROJECT_PROPERTY)
        if not (farm and project and target):
            # A volume must name its project: one without would be every project's.
            raise ValueError(f"a build without its builder's farm, project and target "
                             f"({farm!r}, {project!r}, {target!r})")
        if is_reproduction(props):
            return reproduction_volume_name(farm, project, target)
        return cache_volume_name(farm, project, target, self.master)


def compile_cache_volume_name(farm: str, image: str, target: str) -> str:
    """The (farm, toolchain, target) compile cache that all projects' builds share: the
    toolchain as the image tag names it, or the whole image where the tag names none
    (a compiler the farm did not build is not mixed with another's)."""
    toolchain = image_toolchain(image)
    return _volume_name(f"rustfarm-{farm}-crates-{toolchain or 'image'}-{target}",
                        farm, toolchain or image, target)


@util.renderer
def compile_cache_mount(props) -> str:
    """The compile cache as the build's container mounts it: read-only for an uploaded
    project (anyone's code), which uses the cache but cannot put crates in it."""
    volume = compile_cache_volume_name(props.getProperty(FARM_PROPERTY),
                                       props.getProperty(IMAGE_PROPERTY),
                                       props.getProperty(TARGET_PROPERTY))
    # A reproduction takes nothing from it either (its steps leave the cache out).
    mode = ":ro" if is_upload_build(props) or is_reproduction(props) else ""
    return f"{volume}:{COMPILE_CACHE_DIR}{mode}"
