"""farm.yaml -> BuildmasterConfig."""

from __future__ import annotations

import datetime

from buildbot.plugins import util

from rustfarm.farmfile import Farm, FarmFileError
from rustfarm.farmfile.model import COMPILE_PROJECT
from rustfarm.runtime import Runtime, effective_farm
from rustfarm.state import StateDir
from rustfarm.workers.ec2 import ec2_reapers
from rustfarm.workers.engines import engine_watch

from .builders import builder_configs
from .check_runs import check_run_reporters
from .compile_jobs import CompileJobs
from .tessel_www import TesselServer
from .database import database_services, database_url, db_config
from .multimaster import multi_master_config, multi_master_services
from .prioritizer import prioritize_builders
from .reporters import project_reporters
from .secret_files import SecretFiles
from .pull_request_comments import comment_reporters
from .pull_requests import pull_request_schedulers
from .schedulers import all_schedulers, change_sources
from .farm_file import load_farm
from .worker_socket import WorkerSocket
from .workers import all_workers
from .www import www_config


def services(farm: Farm, runtime: Runtime, paths: StateDir) -> list:
    found = list(ec2_reapers(farm))
    if farm.compile.targets:
        found.append(CompileJobs(farm, paths.uploads, farm.farm.url))
        if farm.compile.tessel_port:
            found.append(TesselServer(farm.compile.tessel_port, farm.www.host,
                                      farm.compile.tessel_target, farm.compile.tessel_anonymous,
                                      f"{farm.farm.url}plugins/compile/"))
    if any(p.kind == "docker" and p.local for p in farm.pools.values()):
        found.append(WorkerSocket(str(paths.worker_socket), farm.farm.worker_port,
                                  runtime.worker_host(farm)))
    watch = engine_watch(farm.pools.values())
    if watch is not None:
        found.append(watch)
    return found + multi_master_services(farm)


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
    runtime = runtime or Runtime.of(farm)
    paths = StateDir.of(farm)
    farm = effective_farm(farm, runtime).farm
    paths.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {
        "title": farm.farm.title,
        "titleURL": farm.farm.url,
        "buildbotURL": farm.farm.url,
        "buildbotNetUsageData": None,
        "db": db_config(database_url(farm.db, paths.secrets)),
        "protocols": {"pb": {"port": f"tcp:{farm.farm.worker_port}"
                                     f":interface={runtime.worker_host(farm)}"}},
        "secretsProviders": [SecretFiles(dirname=str(paths.secrets))],
        "workers": all_workers(farm, runtime),
        "projects": [util.Project(name=name, description=f"source: {project.source}")
                     for name, project in farm.projects.items()]
                    + ([util.Project(name=COMPILE_PROJECT,
                                     description="projects uploaded to the compile endpoint")]
                       if farm.compile.targets else []),
        "builders": builder_configs(farm, paths),
        "schedulers": all_schedulers(farm, paths) + pull_request_schedulers(farm),
        "change_source": change_sources(farm, paths),
        "services": services(farm, runtime, paths) + database_services(farm.db.url)
                    + project_reporters(farm) + comment_reporters(farm)
                    + check_run_reporters(farm),
        "www": www_config(farm, paths),
        "collapseRequests": False,
        "prioritizeBuilders": prioritize_builders,
        "logCompressionMethod": "gz",
        "configurators": [util.JanitorConfigurator(logHorizon=datetime.timedelta(days=30),
                                                   hour=4, dayOfWeek=6)],
        **multi_master_config(farm),
    }
