"""One builder per (project, target), described as data before it becomes Buildbot's.

``python -m rustfarm.master.builders [farm.yaml]`` prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from buildbot.config import error
from buildbot.plugins import util

from rustfarm.farmfile import Farm, Project, Target
from rustfarm.farmfile.model import COMPILE_PROJECT
from rustfarm.names import builder_name

from .factories import build_factory, compile_project
from .paths import MasterPaths


@dataclass(frozen=True)
class BuilderDef:
    project: Project
    target: Target
    workernames: tuple[str, ...]
    pool_kind: str

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
    def properties(self) -> dict[str, str]:
        return {"project": self.project.name, "target": self.target.triple,
                "arch": self.target.arch, "pool": self.target.pool, "image": self.image,
                "toolchain": self.project.toolchain}

    @property
    def in_container(self) -> bool:
        return self.pool_kind in ("docker", "ec2")

    @property
    def locks(self) -> list:
        # Docker builds share the (project, target) cache volume: one at a time.
        # (EC2 instances each have their own disk, uploads a volume of their own.)
        if self.pool_kind != "docker" or self.project.name == COMPILE_PROJECT:
            return []
        return [util.MasterLock(f"cache-{self.name}").access("exclusive")]



# A worker exports one PB object per builder it serves, and Twisted's PB allows 1,024
# per connection: past that the worker cannot attach at all ("Maximum PB reference
# count exceeded") and no build ever starts. Keep a margin for its other objects.
MAX_BUILDERS_PER_WORKER = 1000


def share_workers(pool: str, workers: tuple[str, ...], builders: int,
                  limit: int = MAX_BUILDERS_PER_WORKER) -> list[tuple[str, ...]]:
    """The workers of each of a pool's ``builders``: all of them while a worker can
    serve every builder, else as many as keep each worker within ``limit``, in turn."""
    if builders <= limit:
        return [workers] * builders
    each = len(workers) * limit // builders
    if each == 0:
        needed = -(-builders // limit)
        error(f"workers.{pool}: {builders} builders need at least {needed} workers "
              f"(a worker serves at most {limit} builders; the pool has {len(workers)})")
        return [workers] * builders
    return [tuple(workers[(first * each + i) % len(workers)] for i in range(each))
            for first in range(builders)]


def builder_defs(farm: Farm) -> list[BuilderDef]:
    """A builder per (project, target), and per target uploads build for (compile:<target>)."""
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
                       farm.pools[target.pool].kind)
            for project, target in pairs]


# Each time a builder starts, Buildbot reads the tags of every builder (its builder
# lookup builds the whole tag map), so tags cost builders x tagged builders rows at
# every master start: 17 of the 27 s that 1,100 builders took. Past this size the
# builders page's search (names are project:target) and Buildbot's projects page
# group them instead.
MAX_TAGGED_BUILDERS = 300


def builder_configs(farm: Farm, paths: MasterPaths) -> list[util.BuilderConfig]:
    defs = builder_defs(farm)
    tagged = len(defs) <= MAX_TAGGED_BUILDERS
    return [util.BuilderConfig(
                name=d.name,
                workernames=list(d.workernames),
                factory=build_factory(farm, d.project, d.target, paths, d.in_container),
                locks=d.locks,
                tags=d.tags if tagged else None,
                properties=d.properties,
                defaultProperties={"profile": d.project.profile},
                project=d.project.name,
                description=f"{d.project.name} for {d.target.triple}")
            for d in defs]

def main(argv: list[str]) -> None:
    from rustfarm.farmfile import load
    farm = load(argv[0] if argv else "farm.yaml")
    rows = [(d.name, d.target.pool, ", ".join(d.workernames), d.image or "-")
            for d in builder_defs(farm)]
    widths = [max(len(r[i]) for r in rows + [("builder", "pool", "workers", "image")])
              for i in range(4)]
    for row in [("builder", "pool", "workers", "image")] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

if __name__ == "__main__":
    main(sys.argv[1:])
