"""What no build may use again, cleared by `farm up` before any build starts: the cache
volumes of images no longer pinned, and what builds without a project left behind.

A project's cache volume and a target's compile cache belong to one image
(workers/docker_volumes.py): once farm.yaml pins another, the old image's volumes
only take disk, and a target directory built against another std fails (E0460).

Nightly builds once took their project from Buildbot's ``project`` property, which
a nightly build's source stamp sets to "": every project's nightly build of a target
shared one cache volume (``rustfarm-<farm>--<target>-...``) and shipped its archive to
``<artifacts>/<revision>/<target>/-<revision>-<target>.tar.gz``, outside any project.
Such a volume may hold any project's sources, and such an archive any project's
binary: the volumes are removed and the archives moved aside, out of every release.
Nothing under a project's own name is touched.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rustfarm.builder_defs import builder_defs
from rustfarm.farmfile import Farm
from rustfarm.state import StateDir
from rustfarm.targets import target_table


@dataclass
class Cleared:
    volumes: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    archives: list[Path] = field(default_factory=list)
    moved_to: Path | None = None
    problems: list[str] = field(default_factory=list)


def unimaged_cache_volume_name(farm: str, project: str, target: str, master: str = "") -> str:
    """A cache volume's name from before images were part of it."""
    from rustfarm.workers.docker_volumes import volume_name
    if master:
        return volume_name(f"rustfarm-{farm}-{master}-{project}-{target}",
                           farm, project, target, master)
    return volume_name(f"rustfarm-{farm}-{project}-{target}", farm, project, target)


def projectless_volume_names(farm: Farm) -> set[str]:
    """Every cache volume name a build without a project could have used: for each target
    the farm or the target table knows, on each of its masters."""
    triples = set(farm.targets) | {t.triple for t in target_table()}
    return {unimaged_cache_volume_name(farm.farm.name, "", triple, master)
            for triple in triples for master in {"", *farm_masters(farm)}}


def farm_masters(farm: Farm) -> list[str]:
    """The names volumes carry of each master: none in a farm of one."""
    return [m.name for m in farm.masters] if farm.multi_master else [""]


def current_cache_volumes(farm: Farm) -> tuple[set[str], list[str]]:
    """The cache and compile cache volumes the farm's builders use now, and the readable
    starts of every name those volumes had or will have with other images."""
    from rustfarm.workers.docker_volumes import (cache_volume_name, cache_volume_prefix,
                                                 compile_cache_volume_name,
                                                 compile_cache_volume_prefix)
    names, prefixes = set(), []
    name = farm.farm.name
    for builder in builder_defs(farm):
        if builder.pool_kind != "docker":
            continue
        triple = builder.target.triple
        names.add(compile_cache_volume_name(name, builder.image, triple))
        prefixes.append(compile_cache_volume_prefix(name, triple))
        # Before compile caches were per image they were per toolchain.
        prefixes.append(f"rustfarm-{name}-crates-{builder.project.toolchain}-{triple}-")
        if builder.is_upload:
            continue
        for master in farm_masters(farm):
            names.add(cache_volume_name(name, builder.project.name, triple, builder.image,
                                        master))
            prefixes.append(cache_volume_prefix(name, builder.project.name, triple, master))
    return names, sorted(set(prefixes))


def is_stale(volume: str, current: set[str], prefixes: list[str]) -> bool:
    """A volume of one of the farm's (project, target) or compile caches whose image is not
    the one pinned now; a name made by ``volume_name`` ends in ``-`` and ten hex digits."""
    from rustfarm.workers.docker_volumes import VOLUME_NAME_MAX
    if volume in current or not re.fullmatch(r".+-[0-9a-f]{10}", volume):
        return False
    # The readable part, as the name had it before images were part of it too.
    readable = volume[:-10]
    return any(readable.startswith(p[:VOLUME_NAME_MAX - 11]) for p in prefixes)


def projectless_archive_dirs(artifacts: Path) -> list[Path]:
    """``<artifacts>/<revision>/<target>/`` directories that hold a project-less archive
    (``-<revision>-<target>.tar.gz``); a project's own are one level deeper."""
    if not artifacts.is_dir():
        return []
    return sorted(target_dir for revision_dir in artifacts.iterdir() if revision_dir.is_dir()
                  for target_dir in revision_dir.iterdir()
                  if target_dir.is_dir() and (target_dir / (
                      f"-{revision_dir.name}-{target_dir.name}.tar.gz")).is_file())


def move_projectless_archives(paths: StateDir, cleared: Cleared) -> None:
    found = projectless_archive_dirs(paths.artifacts)
    if not found:
        return
    aside = paths.root / "quarantine" / "projectless-archives"
    for target_dir in found:
        revision_dir = target_dir.parent
        destination = aside / revision_dir.name / target_dir.name
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target_dir), destination)
        cleared.archives.append(destination)
        if not any(revision_dir.iterdir()):
            revision_dir.rmdir()
    cleared.moved_to = aside


def remove_leftover_volumes(farm: Farm, cleared: Cleared) -> None:
    pools = [p for p in farm.pools.values() if p.kind == "docker"]
    if not pools:
        return
    from docker.errors import DockerException
    from rustfarm.plumbing import docker_client
    names = projectless_volume_names(farm)
    current, prefixes = current_cache_volumes(farm)
    for engine in {e.url: e for p in pools for e in p.engines}.values():
        try:
            client = docker_client(engine.url, engine.tls, timeout=20)
        except DockerException as err:
            cleared.problems.append(f"engine {engine.url}: {err}")
            continue
        try:
            for volume in client.volumes.list():
                if volume.name in names:
                    volume.remove(force=True)
                    cleared.volumes.append(volume.name)
                elif is_stale(volume.name, current, prefixes):
                    volume.remove(force=True)
                    cleared.stale.append(volume.name)
        except DockerException as err:
            cleared.problems.append(f"engine {engine.url}: {err}")
        finally:
            client.close()


def clear_leftovers(farm: Farm, paths: StateDir, docker: bool) -> Cleared:
    """Remove the project-less cache volumes and those of images no longer pinned (on the
    farm's docker engines, where ``docker``) and move the project-less archives to the state directory's
    quarantine/; returns what was done."""
    cleared = Cleared()
    move_projectless_archives(paths, cleared)
    if docker:
        remove_leftover_volumes(farm, cleared)
    return cleared


def describe(cleared: Cleared) -> list[str]:
    """What `farm up` says about it: one line per kind of thing, nothing when clean."""
    lines = []
    if cleared.volumes:
        lines.append(f"removed {len(cleared.volumes)} cache volume(s) that builds of several "
                     f"projects shared (builds without a project): {', '.join(cleared.volumes)}")
    if cleared.stale:
        lines.append(f"removed {len(cleared.stale)} cache volume(s) of images farm.yaml no "
                     f"longer pins: {', '.join(sorted(cleared.stale))}")
    if cleared.archives:
        lines.append(f"moved {len(cleared.archives)} archive(s) built without a "
                     f"project, which may hold another project's binaries, out of the "
                     f"artifact store to {cleared.moved_to}")
    lines += [f"could not look for volumes without a project: {p}" for p in cleared.problems]
    return lines
