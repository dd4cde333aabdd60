"""farm.yaml -> BuildmasterConfig."""

from __future__ import annotations

import datetime

from buildbot.plugins import secrets, util

from rustfarm.farmfile import Farm, FarmFileError
from rustfarm.runtime import Runtime, effective_farm

from .builders import builder_configs
from .paths import MasterPaths
from .schedulers import all_schedulers, change_sources
from .settings import load_farm
from rustfarm.workers.ec2 import ec2_reapers

from .workers import all_workers
from .www import www_config


def buildmaster_config(farm: Farm | None = None, runtime: Runtime | None = None) -> dict:
    if farm is None:
        try:
            farm = load_farm()
        except FarmFileError as err:
            # Buildbot prints config errors one per line, without a traceback.
            from buildbot.config import error
            for problem in err.problems:
                error(str(problem))
            return {}
    runtime = runtime or Runtime.from_environment()
    paths = MasterPaths.of(farm)
    farm = effective_farm(farm, runtime).farm
    paths.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {
        "title": farm.farm.title,
        "titleURL": farm.farm.url,
        "buildbotURL": farm.farm.url,
        "buildbotNetUsageData": None,
        "db": {"db_url": farm.db.url},
        "protocols": {"pb": {"port": f"tcp:{farm.farm.worker_port}"
                                     f":interface={runtime.worker_host(farm)}"}},
        "secretsProviders": [secrets.SecretInAFile(dirname=str(paths.secrets))],
        "workers": all_workers(farm, runtime),
        "projects": [util.Project(name=name, description=f"source: {project.source}")
                     for name, project in farm.projects.items()],
        "builders": builder_configs(farm, paths),
        "schedulers": all_schedulers(farm),
        "change_source": change_sources(farm, paths),
        "services": ec2_reapers(farm),
        "www": www_config(farm, paths),
        "collapseRequests": False,
        "properties": {"farm": farm.farm.name},
        "logCompressionMethod": "gz",
        "configurators": [util.JanitorConfigurator(logHorizon=datetime.timedelta(days=30),
                                                   hour=4, dayOfWeek=6)],
    }
