"""One builder per (project, target), described as data before it becomes Buildbot's.

``python -m rustfarm.master.builders [farm.yaml]`` prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from buildbot.plugins import util

from rustfarm.farmfile import Farm, Project, Target

from .factories import build_factory
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
    def properties(self) -> dict[str, str]:
        return {"project": self.project.name, "target": self.target.triple,
                "arch": self.target.arch, "pool": self.target.pool, "image": self.target.image}

    @property
    def in_container(self) -> bool:
        return self.pool_kind in ("docker", "ec2")

    @property
    def locks(self) -> list:
        # Docker builds share the (project, target) cache volume: one at a time.
        # (EC2 instances each have their own disk.)
        if self.pool_kind != "docker":
            return []
        return [util.MasterLock(f"cache-{self.name}").access("exclusive")]


def builder_name(project: str, triple: str) -> str:
    return f"{project}:{triple}"

def builder_defs(farm: Farm) -> list[BuilderDef]:
    return [BuilderDef(project, target, farm.pools[target.pool].worker_names(),
                       farm.pools[target.pool].kind)
            for project in farm.projects.values()
            for target in farm.project_targets(project)]

def builder_configs(farm: Farm, paths: MasterPaths) -> list[util.BuilderConfig]:
    return [util.BuilderConfig(
                name=d.name,
                workernames=list(d.workernames),
                factory=build_factory(farm, d.project, d.target, paths, d.in_container),
                locks=d.locks,
                tags=d.tags,
                properties=d.properties,
                defaultProperties={"profile": d.project.profile},
                project=d.project.name,
                description=f"{d.project.name} for {d.target.triple}")
            for d in builder_defs(farm)]

def main(argv: list[str]) -> None:
    from rustfarm.farmfile import load
    farm = load(argv[0] if argv else "farm.yaml")
    rows = [(d.name, d.target.pool, ", ".join(d.workernames), d.target.image or "-")
            for d in builder_defs(farm)]
    widths = [max(len(r[i]) for r in rows + [("builder", "pool", "workers", "image")])
              for i in range(4)]
    for row in [("builder", "pool", "workers", "image")] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

if __name__ == "__main__":
    main(sys.argv[1:])
