"""A local pool: buildbot-worker processes on the master's machine, run by `farm up`."""

from __future__ import annotations

from buildbot.plugins import util, worker

from rustfarm.farmfile import LocalPool
from rustfarm.state import worker_secret_name

from .connection import PromptConnectionMixin


class LocalWorker(PromptConnectionMixin, worker.Worker):
    """Buildbot's worker, its connection sending without delay."""


def local_workers(pool: LocalPool) -> list[worker.Worker]:
    return [LocalWorker(name, util.Secret(worker_secret_name(name)), max_builds=1,
                        properties={"pool": pool.name})
            for name in pool.worker_names()]
