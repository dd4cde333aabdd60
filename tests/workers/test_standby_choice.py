"""Which worker a builder's build goes to in a pool with standby containers."""

from __future__ import annotations

from types import SimpleNamespace

from rustfarm.workers.standby import Standby, StandbyFirst, StandbyMixin


class Worker(StandbyMixin):
    def __init__(self, name: str, waits_for: str | None = None):
        self.name = name
        self._standby = Standby(waits_for, ()) if waits_for else None


def wfb(name: str, waits_for: str | None = None):
    return SimpleNamespace(worker=Worker(name, waits_for))


def test_a_build_goes_to_the_container_waiting_for_its_builder():
    workers = [wfb("dk-1"), wfb("dk-2", "other"), wfb("dk-3", "hello")]
    for _ in range(20):
        assert StandbyFirst()(SimpleNamespace(name="hello"), workers, None).worker.name == "dk-3"


def test_else_to_a_worker_without_a_standby_before_replacing_one():
    workers = [wfb("dk-1", "other"), wfb("dk-2"), wfb("dk-3", "third")]
    for _ in range(20):
        assert StandbyFirst()(SimpleNamespace(name="hello"), workers, None).worker.name == "dk-2"
    taken = [wfb("dk-1", "other"), wfb("dk-3", "third")]
    chosen = {StandbyFirst()(SimpleNamespace(name="hello"), taken, None).worker.name
              for _ in range(50)}
    assert chosen <= {"dk-1", "dk-3"} and chosen
    assert StandbyFirst()(SimpleNamespace(name="hello"), [], None) is None


def test_the_pools_own_chooser_chooses_among_those():
    seen = []

    def then(builder, workers, request):
        seen.append([w.worker.name for w in workers])
        return workers[-1]

    workers = [wfb("dk-1", "other"), wfb("dk-2"), wfb("dk-3")]
    assert StandbyFirst(then)(SimpleNamespace(name="hello"), workers, "req").worker.name == "dk-3"
    assert seen == [["dk-2", "dk-3"]]
