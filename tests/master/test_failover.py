"""How a master of a multi-master farm gives up on a silent peer (master/failover.py),
against a stand-in for Buildbot's master: which peers it declares stopped, and what it
releases of theirs."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from twisted.internet import defer

from rustfarm.master.failover import MasterFailover

NOW = 1_800_000_000


def at(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(NOW - seconds_ago, tz=timezone.utc)


class FakeMaster:
    """The few of Buildbot's master's database reads and data updates the service uses;
    every update is recorded in ``calls``."""

    def __init__(self, peers, claimed=(), workers=()):
        self.masterid, self.name = 1, "here"
        self.reactor = SimpleNamespace(seconds=lambda: NOW)
        self.calls: list[tuple] = []
        record = self.record
        self.db = SimpleNamespace(
            masters=SimpleNamespace(getMasters=lambda: defer.succeed(peers)),
            buildrequests=SimpleNamespace(
                # The unfinished requests peer 2 claimed.
                getBuildRequests=lambda **query: defer.succeed(
                    [SimpleNamespace(buildrequestid=b) for b in claimed]
                    if query == {"complete": False, "claimed": 2} else []),
                _unclaim_buildrequests_for_master=lambda brids, masterid: record(
                    "release claims", brids, masterid)),
            workers=SimpleNamespace(getWorkers=lambda: defer.succeed(list(workers))))
        self.data = SimpleNamespace(updates=SimpleNamespace(
            masterActive=lambda name, masterid: record("active", masterid),
            masterStopped=lambda name, masterid: record("stopped", masterid),
            workerDisconnected=lambda workerid, masterid: record("disconnected", workerid,
                                                                 masterid),
            unclaimBuildRequests=lambda brids: record("announce unclaimed", brids)))
        self.botmaster = SimpleNamespace(
            maybeStartBuildsForAllBuilders=lambda: record("every builder looks"))

    def record(self, *call):
        self.calls.append(call)
        return defer.succeed(None)


def peer(masterid: int, seconds_ago: float, active: bool = True):
    return SimpleNamespace(id=masterid, name=f"m{masterid}", active=active,
                           last_active=at(seconds_ago))


def watch(master: FakeMaster, timeout: int = 30) -> list[tuple]:
    service = MasterFailover(master_timeout=timeout)
    service.parent = SimpleNamespace(master=master)
    service.reconfigService(master_timeout=timeout)
    results = []
    service._beat_and_watch().addBoth(results.append)
    assert results == [None]
    return master.calls


def test_it_beats_and_leaves_peers_that_beat_alone():
    master = FakeMaster([peer(1, 0), peer(2, 29), peer(3, 500, active=False)])
    assert watch(master) == [("active", 1)]


def test_a_silent_peer_is_stopped_and_its_requests_and_workers_released():
    workers = [SimpleNamespace(id=7, connected_to=[2, 1]), SimpleNamespace(id=8,
                                                                           connected_to=[1])]
    master = FakeMaster([peer(1, 0), peer(2, 31)], claimed=[11, 12], workers=workers)
    assert watch(master) == [("active", 1), ("stopped", 2), ("disconnected", 7, 2),
                             ("release claims", [11, 12], 2),
                             ("announce unclaimed", [11, 12]), ("every builder looks",)]


def test_a_silent_peer_without_claims_still_has_every_builder_look_at_its_requests():
    """It may have queued a request and died before announcing it."""
    master = FakeMaster([peer(1, 0), peer(2, 31)])
    assert watch(master) == [("active", 1), ("stopped", 2), ("every builder looks",)]


def test_the_timeout_is_the_farm_s():
    master = FakeMaster([peer(1, 0), peer(2, 31)])
    assert watch(master, timeout=60) == [("active", 1)]
