"""One Buildbot builder per builder of the farm (rustfarm/builder_defs.py says which)."""

from __future__ import annotations

from buildbot.config import error
from buildbot.plugins import util

from rustfarm.builder_defs import BuilderDef, TooFewWorkers, builder_defs
from rustfarm.farmfile import Farm
from rustfarm.state import StateDir
from rustfarm.workers.engines import WarmEngineFirst
from rustfarm.workers.rebuild_choice import ElsewhereFirst
from rustfarm.workers.standby import StandbyFirst

from .factories import build_factory


def locks(d: BuilderDef) -> list:
    # Docker builds share the (project, target) cache volume: one at a time.
    # (EC2 instances each have their own disk, uploads a volume of their own.)
    if d.pool_kind != "docker" or d.is_upload:
        return []
    return [util.MasterLock(f"cache-{d.name}").access("exclusive")]


# Each time a builder starts, Buildbot reads the tags of every builder (its builder
# lookup builds the whole tag map), so tags cost builders x tagged builders rows at
# every master start, most of a large farm's start (docs/benchmarks.md). Past this
# size the builders page's search (names are project:target) and Buildbot's projects
# page group the builders instead.
MAX_TAGGED_BUILDERS = 300


def builder_configs(farm: Farm, paths: StateDir) -> list[util.BuilderConfig]:
    try:
        defs = builder_defs(farm)
    except TooFewWorkers as err:
        error(str(err))
        return []
    tagged = len(defs) <= MAX_TAGGED_BUILDERS
    # A pool over several engines sends a builder's builds where its caches are.
    several = {name: WarmEngineFirst(pool.warm_engine_wait)
               for name, pool in farm.pools.items() if pool.kind == "docker"
               and len(set(pool.worker_engines().values())) > 1}
    # A pool with standby containers sends a builder's build to the one waiting for it.
    choosers = {name: StandbyFirst(several.get(name)) if pool.standby else several.get(name)
                for name, pool in farm.pools.items() if pool.kind == "docker"}
    # A release's rebuild goes to another worker than the release's, where there is one.
    return [util.BuilderConfig(
                name=d.name,
                workernames=list(d.workernames),
                factory=build_factory(farm, d.project, d.target, paths, d.in_container),
                locks=locks(d),
                nextWorker=ElsewhereFirst(choosers.get(d.target.pool)),
                tags=d.tags if tagged else None,
                properties=d.properties,
                defaultProperties={"profile": d.project.profile},
                project=d.project.name,
                description=f"{d.project.name} for {d.target.triple}")
            for d in defs]
