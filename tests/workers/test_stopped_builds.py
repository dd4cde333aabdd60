"""A build stopped before it asked for its worker starts no container and no instance
(workers/stopped_builds.py): the farm's latent workers decline it ahead of Buildbot's
own start, and start for any other build as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from buildbot.worker.latent import AbstractLatentWorker

from rustfarm.workers.docker import FarmDockerLatentWorker
from rustfarm.workers.ec2.worker import FarmEC2LatentWorker
from rustfarm.workers.stopped_builds import NothingStartsForStoppedBuilds


class Upstream:
    """Where Buildbot's start would run: records what it was asked."""

    def __init__(self):
        self.name, self.started = "w-1", []

    def substantiate(self, wfb, build):
        self.started.append(build)
        return True


class Worker(NothingStartsForStoppedBuilds, Upstream):
    pass


WFB = SimpleNamespace(builder_name="hello:mips-unknown-linux-musl")


def outcome(deferred_or_value):
    found = []
    if hasattr(deferred_or_value, "addBoth"):
        deferred_or_value.addBoth(found.append)
        return found[0]
    return deferred_or_value


def test_a_stopped_build_starts_nothing():
    worker, build = Worker(), SimpleNamespace(stopped=True)
    assert outcome(worker.substantiate(WFB, build)) is False
    assert worker.started == []


def test_a_running_build_or_a_standby_start_as_before():
    worker = Worker()
    running, standby = SimpleNamespace(stopped=False), object()
    assert outcome(worker.substantiate(WFB, running)) is True
    assert outcome(worker.substantiate(WFB, standby)) is True
    assert outcome(worker.substantiate(WFB, None)) is True
    assert worker.started == [running, standby, None]


@pytest.mark.parametrize("cls", [FarmDockerLatentWorker, FarmEC2LatentWorker])
def test_the_farm_s_latent_workers_decline_before_buildbot_s_start(cls):
    order = [k for k in cls.__mro__ if "substantiate" in vars(k)]
    assert order.index(NothingStartsForStoppedBuilds) < order.index(AbstractLatentWorker)
