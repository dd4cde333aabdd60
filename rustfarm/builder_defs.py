"""Which builders a farm has: one per (project, target), one per target that uploads
build for (``compile:<target>``), and the workers each of them may use.

Data only: the master turns each into a Buildbot builder (master/builders.py);
`farm builders` prints them and `farm check` refuses a pool too small for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FarmError
from .farmfile import Farm, Project, Target
from .farmfile.model import COMPILE_PROJECT
from .names import (FARM_PROPERTY, IMAGE_PROPERTY, PROJECT_PROPERTY, TARGET_PROPERTY,
                    UPLOAD_BUILDER_PROPERTY, builder_name)

# A worker exports one PB object per builder it serves, and Twisted's PB allows 1,024
# per connection: past that the worker cannot attach at all ("Maximum PB reference
# count exceeded") and no build ever starts. Keep a margin for its other objects.
MAX_BUILDERS_PER_WORKER = 1000


@dataclass(frozen=True)
class BuilderDef:
    project: Project
    target: Target
    workernames: tuple[str, ...]
    pool_kind: str
    farm_name: str

    @property
    def name(self) -> str:
        return builder_name(self.project.name, self.target.triple)

    @property
    def tags(self) -> list[str]:
        tags = [self.project.name, self.target.triple, self.target.arch, self.target.pool]
        return list(dict.fromkeys(tags))     # Buildbot refuses a tag given twice

    @property
    def image(self) -> str:
        return self.target.image_for(self.project.toolchain)

    @property
    def is_upload(self) -> bool:
        return self.project.name == COMPILE_PROJECT

    @property
    def properties(self) -> dict:
        """The builder's properties: what says which builder a build is of, under names
        nothing else sets (rustfarm/names.py)."""
        return {FARM_PROPERTY: self.farm_name, PROJECT_PROPERTY: self.project.name,
                TARGET_PROPERTY: self.target.triple, IMAGE_PROPERTY: self.image,
                UPLOAD_BUILDER_PROPERTY: self.is_upload,
                "arch": self.target.arch, "pool": self.target.pool,
                "toolchain": self.project.toolchain}

    @property
    def in_container(self) -> bool:
        return self.pool_kind in ("docker", "ec2")


class TooFewWorkers(FarmError):
    """A pool whose workers cannot serve all of its builders."""


def share_workers(pool: str, workers: tuple[str, ...], builders: int,
                  limit: int = MAX_BUILDERS_PER_WORKER) -> list[tuple[str, ...]]:
    """The workers of each of a pool's ``builders``: all of them while a worker can
    serve every builder, else as many as keep each worker within ``limit``, in turn."""
    if builders <= limit:
        return [workers] * builders
    each = len(workers) * limit // builders
    if each == 0:
        needed = -(-builders // limit)
        raise TooFewWorkers(f"workers.{pool}: {builders} builders need at least {needed} "
                            f"workers (a worker serves at most {limit} builders; the pool has "
                            f"{len(workers)})")
    return [tuple(workers[(first * each + i) % len(workers)] for i in range(each))
            for first in range(builders)]


def compile_project(farm: Farm) -> Project:
    """The project uploads build as: release, stripped, no tests, the farm's toolchain."""
    return Project(name=COMPILE_PROJECT, source="", subdir="", branches=(), poll_interval=0,
                   targets=farm.compile.targets, profile="release", features=(), test=False,
                   binaries=(), toolchain=farm.farm.toolchain)


def builder_defs(farm: Farm) -> list[BuilderDef]:
    """A builder per (project, target), and per target uploads build for (compile:<target>).
    Raises TooFewWorkers for a pool whose workers cannot serve its builders."""
    pairs = [(project, target) for project in farm.projects.values()
             for target in farm.project_targets(project)]
    if farm.compile.targets:
        uploads = compile_project(farm)
        pairs += [(uploads, farm.targets[t]) for t in farm.compile.targets]
    workers_of: dict[tuple[str, str], tuple[str, ...]] = {}
    for name, pool in farm.pools.items():
        on_pool = [(project.name, target.triple) for project, target in pairs
                   if target.pool == name]
        workers_of.update(zip(on_pool, share_workers(name, pool.worker_names(), len(on_pool))))
    return [BuilderDef(project, target, workers_of[project.name, target.triple],
                       farm.pools[target.pool].kind, farm.farm.name)
            for project, target in pairs]


def builders_table(farm: Farm) -> str:
    """`farm builders`: each builder with its pool, workers and image."""
    head = ("builder", "pool", "workers", "image")
    rows = [(d.name, d.target.pool, ", ".join(d.workernames), d.image or "-")
            for d in builder_defs(farm)]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                   + "\n" for row in [head, *rows])
