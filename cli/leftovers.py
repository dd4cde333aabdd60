"""What builds without a project left behind, cleared by `farm up` before any build starts.

Nightly builds once took their project from Buildbot's ``project`` property, which
a nightly build's source stamp sets to "": every project's nightly build of a target
shared one cache volume (``rustfarm-<farm>--<target>-...``) and shipped its archive to
``<artifacts>/<revision>/<target>/-<revision>-<target>.tar.gz``, outside any project.
Such a volume may hold any project's sources, and such an archive any project's
binary: the volumes are removed and the archives moved aside, out of every release.
Nothing under a project's own name is touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rustfarm.farmfile import Farm
from rustfarm.state import StateDir
from rustfarm.targets import target_table


@dataclass
class Cleared:
    volumes: list[str] = field(default_factory=list)
    archives: list[Path] = field(default_factory=list)
    moved_to: Path | None = None
    problems: list[str] = field(default_factory=list)


def projectless_volume_names(farm: Farm) -> set[str]:
    """Every cache volume name a build without a project could have used: for each target
    the farm or the target table knows, on each of its masters."""
    from rustfarm.workers.docker_volumes import cache_volume_name
    triples = set(farm.targets) | {t.triple for t in target_table()}
    masters = [""] + ([m.name for m in farm.masters] if farm.multi_master else [])
    return {cache_volume_name(farm.farm.name, "", triple, master)
            for triple in triples for master in masters}


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


def remove_projectless_volumes(farm: Farm, cleared: Cleared) -> None:
    pools = [p for p in farm.pools.values() if p.kind == "docker"]
    if not pools:
        return
    from docker.errors import DockerException
    from rustfarm.plumbing import docker_client
    names = projectless_volume_names(farm)
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
        except DockerException as err:
            cleared.problems.append(f"engine {engine.url}: {err}")
        finally:
            client.close()


def clear_projectless_leftovers(farm: Farm, paths: StateDir, docker: bool) -> Cleared:
    """Remove the project-less cache volumes (on the farm's docker engines, where
    ``docker``) and move the project-less archives to the state directory's
    quarantine/; returns what was done."""
    cleared = Cleared()
    move_projectless_archives(paths, cleared)
    if docker:
        remove_projectless_volumes(farm, cleared)
    return cleared


def describe(cleared: Cleared) -> list[str]:
    """What `farm up` says about it: one line per kind of thing, nothing when clean."""
    lines = []
    if cleared.volumes:
        lines.append(f"removed {len(cleared.volumes)} cache volume(s) that builds of several "
                     f"projects shared (builds without a project): {', '.join(cleared.volumes)}")
    if cleared.archives:
        lines.append(f"moved {len(cleared.archives)} archive(s) built without a "
                     f"project, which may hold another project's binaries, out of the "
                     f"artifact store to {cleared.moved_to}")
    lines += [f"could not look for volumes without a project: {p}" for p in cleared.problems]
    return lines
