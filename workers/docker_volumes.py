"""The volumes a docker pool's containers mount, and where: a cache volume per (farm,
project, target, image) kept between containers so only changed crates recompile, an
upload's own volume, and the compile cache per (farm, image, target) all projects share.

Both caches belong to one image: a new image may carry another std under the same rustc
version, which neither cargo's fingerprints nor sccache's keys see, and crates built
against the old one then fail with E0460. Volumes of images no longer pinned are
removed by `farm up` (cli/leftovers.py)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from buildbot.interfaces import IRenderable
from buildbot.plugins import util
from zope.interface import implementer

from rustfarm.names import (FARM_PROPERTY, IMAGE_PROPERTY, PROJECT_PROPERTY,
                            TARGET_PROPERTY, is_reproduction, is_untrusted, is_upload_build,
                            pull_request, upload_job)
from rustfarm.targets import image_tag


# Inside the image: the mount point of the build cache (the image makes it,
# owned by rustbuild, so a new volume inherits that owner), of the worker
# socket's directory and of the container's own password file.
CACHE_DIR = "/home/rustbuild/cache"
# The shared compile cache's mount point (a directory the image makes for it).
COMPILE_CACHE_DIR = "/home/rustbuild/.cache/sccache"
# Where a container sees the farm's crate store, read-only (rustfarm/crate_store.py),
# and the worker property that says so (set only where its engine mounts the store).
CRATE_STORE_DIR = "/home/rustbuild/crates"
CRATE_STORE_PROPERTY = "crate_store"
# Where a worker that cannot see the store keeps its own copies of the build's entries,
# under the build's cache (worker_tool/crate_copies.py).
CRATE_COPIES = ".rustfarm/crate-copies"
SOCKET_DIR = "/run/rustfarm"
SECRET_DIR = "/run/rustfarm-worker"
RUSTBUILD_UID = 1000
VOLUME_NAME_MAX = 200
# The build property that names the volume a build's container mounts at CACHE_DIR.
CACHE_VOLUME_PROPERTY = "cache_volume"


def volume_name(readable: str, *identity: str) -> str:
    """A volume name: readable, and unambiguous even when names contain '-' (farm a-b
    project c is not farm a project b-c), by a digest of what identifies it."""
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:10]
    return f"{readable[:VOLUME_NAME_MAX - 11]}-{digest}"


def image_label(image: str) -> str:
    """What a volume's readable name says of its image: the tag (``1.96-3f2a...``, a
    content tag naming exactly one recipe), in the characters a volume name allows."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", image_tag(image) or "latest")[:40]


def cache_volume_prefix(farm: str, project: str, target: str, master: str = "") -> str:
    """The readable start of every (farm, project, target) cache volume, whatever its
    image: ``rustfarm-<farm>-[<master>-]<project>-<target>-``."""
    owner = f"{farm}-{master}" if master else farm
    return f"rustfarm-{owner}-{project}-{target}-"


def cache_volume_name(farm: str, project: str, target: str, image: str,
                      master: str = "") -> str:
    """The (farm, project, target, image) cache volume; in a farm of several masters,
    each master's own: the lock that makes a builder's builds take turns on its volume
    is a master's (Buildbot has no lock across masters), and two builds unpacking
    different revisions into one directory could ship one's binaries as the other's.
    The image is the whole reference: a tag such as ``latest`` that moves to other
    contents keeps its volume, so farm.yaml pins content tags."""
    readable = cache_volume_prefix(farm, project, target, master) + image_label(image)
    if master:
        return volume_name(readable, farm, project, target, image, master)
    return volume_name(readable, farm, project, target, image)


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


def pull_request_volume_name(farm: str, project: str, target: str, number: int,
                             build: int) -> str:
    """A pull request's build's volume: its own, removed with its container, so nothing
    a request's code leaves reaches the project's builds (or another request's)."""
    digest = hashlib.sha256("\0".join((farm, project, target, str(number), str(build)))
                            .encode()).hexdigest()[:16]
    return f"{upload_volume_prefix(farm)}pr{number}-{digest}"


def build_own_volume(props) -> str | None:
    """The volume of a build that has one of its own (an upload's, a reproduction's, a
    pull request's), removed with its container; None for a cache volume's build."""
    farm, target = props.getProperty(FARM_PROPERTY), props.getProperty(TARGET_PROPERTY)
    if is_upload_build(props):
        job = upload_job(props)
        if not job:
            raise ValueError("an upload builder's build without its upload's job")
        return upload_volume_name(farm, job, target)
    project = props.getProperty(PROJECT_PROPERTY)
    if is_reproduction(props):
        return reproduction_volume_name(farm, project, target)
    number = pull_request(props)
    if number is not None:
        return pull_request_volume_name(farm, project, target, number,
                                        props.getProperty("buildnumber"))
    return None


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
            return build_own_volume(props)
        project, image = props.getProperty(PROJECT_PROPERTY), props.getProperty(IMAGE_PROPERTY)
        if not (farm and project and target and image):
            # A volume must name its project: one without would be every project's.
            raise ValueError(f"a build without its builder's farm, project, target and "
                             f"image ({farm!r}, {project!r}, {target!r}, {image!r})")
        own = build_own_volume(props)
        if own is not None:
            return own
        return cache_volume_name(farm, project, target, image, self.master)


def compile_cache_volume_prefix(farm: str, target: str) -> str:
    """The readable start of every compile cache volume of (farm, target)."""
    return f"rustfarm-{farm}-crates-{target}-"


def compile_cache_volume_name(farm: str, image: str, target: str) -> str:
    """The (farm, image, target) compile cache that all projects' builds of the target
    share: one image's, as its std and linker are (see the module)."""
    return volume_name(compile_cache_volume_prefix(farm, target) + image_label(image),
                        farm, "crates", image, target)


@util.renderer
def compile_cache_mount(props) -> str:
    """The compile cache as the build's container mounts it: read-only for an upload's
    and a pull request's build (anyone's code), which use the cache but cannot put
    crates in it."""
    volume = compile_cache_volume_name(props.getProperty(FARM_PROPERTY),
                                       props.getProperty(IMAGE_PROPERTY),
                                       props.getProperty(TARGET_PROPERTY))
    # A reproduction takes nothing from it either (its steps leave the cache out).
    mode = ":ro" if is_untrusted(props) or is_reproduction(props) else ""
    return f"{volume}:{COMPILE_CACHE_DIR}{mode}"
