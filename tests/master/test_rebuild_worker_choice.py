"""Which worker a release's rebuild (`farm verify-build`) goes to: another than the one
that built the release while there is one, the release's own when no other can take
it; and where that worker's name comes from (the release's provenance, read by the
verify scheduler into the request)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from buildbot.process.properties import Properties
from buildbot.process.workerforbuilder import States
from twisted.internet import defer

from rustfarm.attestations import PROVENANCE_FILE, ReleaseFacts, Shipped, provenance
from rustfarm.farmfile import loads
from rustfarm.master import schedulers
from rustfarm.master.artifact_places import ArtifactPlaces
from rustfarm.master.release_workers import recorded_workers
from rustfarm.names import FORCE_FORM_SOURCE, RELEASE_PROPERTY, RELEASE_WORKERS_PROPERTY, \
    REPRODUCE_PROPERTY, VERIFY_SCHEDULER_SOURCE, release_workers
from rustfarm.release_files import rebuilt_where
from rustfarm.state import StateDir
from rustfarm.workers.rebuild_choice import ElsewhereFirst
from rustfarm.workers.standby import Standby, StandbyFirst, StandbyMixin

BUILDER = "app:mips-unknown-linux-musl"


class Worker(StandbyMixin):
    def __init__(self, name: str, standby_for: str | None = None):
        self.workername = name
        self.workerforbuilders = {}
        self._standby = Standby(standby_for, ()) if standby_for else None


def wfb(name: str, standby_for: str | None = None):
    return SimpleNamespace(worker=Worker(name, standby_for), state=States.AVAILABLE,
                           isBusy=lambda: False)


def building(w, other_builder: str = "other:mips") -> None:
    """The worker starts or runs a build of another builder."""
    w.worker.workerforbuilders[other_builder] = SimpleNamespace(isBusy=lambda: True)


def builder(*workers):
    return SimpleNamespace(name=BUILDER, workers=list(workers))


def rebuild(original: str | None, source: str = VERIFY_SCHEDULER_SOURCE,
            reproduce_source: str = FORCE_FORM_SOURCE):
    props = Properties()
    props.setProperty(REPRODUCE_PROPERTY, True, reproduce_source)
    if original is not None:
        props.setProperty(RELEASE_WORKERS_PROPERTY, {BUILDER: original}, source)
    return SimpleNamespace(properties=props)


def chosen(choose, bldr, free, request, times: int = 100) -> set[str]:
    return {getattr(choose(bldr, free, request), "worker", SimpleNamespace(workername=None))
            .workername for _ in range(times)}


def test_a_rebuild_goes_to_another_worker_than_the_release_s():
    dk1, dk2, dk3 = wfb("dk-1"), wfb("dk-2"), wfb("dk-3")
    bldr = builder(dk1, dk2, dk3)
    assert chosen(ElsewhereFirst(), bldr, [dk1, dk2, dk3], rebuild("dk-2")) == {"dk-1", "dk-3"}
    assert chosen(ElsewhereFirst(), bldr, [dk1, dk2], rebuild("dk-1")) == {"dk-2"}
    # Any other build, or a rebuild whose release names no worker: any free worker.
    assert chosen(ElsewhereFirst(), bldr, [dk1, dk2], None) == {"dk-1", "dk-2"}
    assert chosen(ElsewhereFirst(), bldr, [dk1, dk2], rebuild(None)) == {"dk-1", "dk-2"}
    assert ElsewhereFirst()(bldr, [], rebuild("dk-1")) is None


def test_the_release_s_worker_is_skipped_even_where_its_standby_waits_for_the_builder():
    dk1, dk2 = wfb("dk-1", standby_for=BUILDER), wfb("dk-2")
    bldr = builder(dk1, dk2)
    assert chosen(ElsewhereFirst(StandbyFirst()), bldr, [dk1, dk2], None) == {"dk-1"}
    assert chosen(ElsewhereFirst(StandbyFirst()), bldr, [dk1, dk2], rebuild("dk-1")) == {"dk-2"}


def test_it_waits_for_a_busy_other_worker_and_takes_the_release_s_when_none_can_come():
    dk1, dk2 = wfb("dk-1"), wfb("dk-2")
    bldr = builder(dk1, dk2)
    building(dk2)
    # dk-2 will be free when its build ends: the rebuild waits for it.
    assert ElsewhereFirst()(bldr, [dk1], rebuild("dk-1")) is None
    # dk-2 builds nothing (disconnected, or refused by its engine): dk-1 it is.
    dk2.worker.workerforbuilders.clear()
    assert ElsewhereFirst()(bldr, [dk1], rebuild("dk-1")) is dk1
    gone = SimpleNamespace(worker=None, state=States.DETACHED, isBusy=lambda: True)
    assert ElsewhereFirst()(builder(dk1, gone), [dk1], rebuild("dk-1")) is dk1
    # The builder's one worker: the rebuild runs there, and never waits.
    assert ElsewhereFirst()(builder(dk1), [dk1], rebuild("dk-1")) is dk1


def test_only_the_verify_scheduler_s_names_of_a_reproduction_count():
    dk1, dk2 = wfb("dk-1"), wfb("dk-2")
    bldr = builder(dk1, dk2)
    assert release_workers(rebuild("dk-1").properties) == {BUILDER: "dk-1"}
    for request in (rebuild("dk-1", source="Force Build Form"),
                    rebuild("dk-1", reproduce_source="Change")):
        assert release_workers(request.properties) == {}
        assert chosen(ElsewhereFirst(), bldr, [dk1, dk2], request) == {"dk-1", "dk-2"}


def test_the_outcome_says_where_it_was_rebuilt():
    assert rebuilt_where("dk-2", "dk-1") == "rebuilt on dk-2, the release on dk-1"
    assert rebuilt_where("dk-1", "dk-1").startswith("rebuilt on the same worker as the "
                                                    "release, dk-1")
    assert "not recorded" in rebuilt_where("dk-1", None)
    assert rebuilt_where("", "dk-1") == ""


FACTS = ReleaseFacts(
    project="app", target="mips-unknown-linux-musl", revision="a" * 40, repository="/srv/app",
    builder=BUILDER, build_url="http://farm/#/builders/3/builds/1", farm_url="http://farm/",
    image="rustfarm/mips:1", image_digest="", toolchain="1.96.0", profile="release",
    cargo_arguments=(), environment={}, started=1_800_000_000, finished=1_800_000_042,
    archive=Shipped("app.tar.gz", "b" * 64), binaries=())


def farm(tmp_path):
    (tmp_path / "app").mkdir(exist_ok=True)
    return loads(f"""\
farm: {{name: demo, worker_port: 19989}}
workers:
  dk: {{kind: local, count: 2}}
targets:
  mips-unknown-linux-musl: {{pool: dk}}
  aarch64-unknown-linux-gnu: {{pool: dk}}
projects:
  app:
    source: {tmp_path / "app"}
""", tmp_path / "farm.yaml")


def signed(places: ArtifactPlaces, label: str, triple: str, worker: str) -> None:
    directory = places.root / "app" / label / triple
    directory.mkdir(parents=True)
    facts = dataclasses.replace(FACTS, target=triple, worker=worker)
    (directory / PROVENANCE_FILE).write_text(provenance(facts))


def test_the_release_s_provenance_names_the_worker_of_each_target(tmp_path):
    places = ArtifactPlaces(farm(tmp_path).artifacts, StateDir(tmp_path / "state"))
    signed(places, "a" * 12, "mips-unknown-linux-musl", "dk-2")
    signed(places, "a" * 12, "aarch64-unknown-linux-gnu", "")     # signed before it said
    targets = {"app:mips-unknown-linux-musl": "mips-unknown-linux-musl",
               "app:aarch64-unknown-linux-gnu": "aarch64-unknown-linux-gnu"}
    expected = {"app:mips-unknown-linux-musl": "dk-2"}
    assert recorded_workers(places, "app", "a" * 40, targets) == expected
    assert recorded_workers(places, "app", "a" * 12, targets) == expected
    assert recorded_workers(places, "app", "aaaaaaa", targets) == expected      # a prefix
    assert recorded_workers(places, "app", "b" * 12, targets) == {}
    assert recorded_workers(places, "app", "../app", targets) == {}


@pytest.fixture
def verify_scheduler(tmp_path, monkeypatch):
    """The project's verify scheduler, its store read at once and its buildset kept."""
    farm_ = farm(tmp_path)
    places = ArtifactPlaces(farm_.artifacts, StateDir(tmp_path / "state"))
    signed(places, "a" * 12, "mips-unknown-linux-musl", "dk-1")
    signed(places, "c" * 12, "mips-unknown-linux-musl", "dk-2")
    [scheduler] = [s for s in schedulers.force_schedulers(farm_, places)
                   if s.name == "verify-app"]
    added = []
    monkeypatch.setattr(schedulers.threads, "deferToThread",
                        lambda f, *args: defer.succeed(f(*args)))
    monkeypatch.setattr(schedulers.TargetsForceScheduler,
                        "addBuildsetForSourceStampsWithDefaults",
                        lambda self, reason, **kwargs: added.append(kwargs) or defer.succeed(1))
    return scheduler, added


def test_the_verify_scheduler_names_the_release_s_workers_in_the_request(verify_scheduler):
    scheduler, added = verify_scheduler
    for release, revision, expected in (("", "a" * 40, "dk-1"), ("c" * 12, None, "dk-2")):
        props = Properties()
        props.setProperty(RELEASE_PROPERTY, release, FORCE_FORM_SOURCE)
        scheduler.addBuildsetForSourceStampsWithDefaults(
            "farm verify-build", sourcestamps=[{"codebase": "", "revision": revision}],
            properties=props, builderNames=["app:mips-unknown-linux-musl"])
        assert added[-1]["properties"].getProperty(RELEASE_WORKERS_PROPERTY) == {
            "app:mips-unknown-linux-musl": expected}
        assert added[-1]["properties"].getPropertySource(RELEASE_WORKERS_PROPERTY) == \
            VERIFY_SCHEDULER_SOURCE
