"""How the master scales: workers shared out within Twisted PB's limit, one force
button per project, builders prioritised from one query, cheap git polls, and
SQLite connections kept open."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from buildbot.schedulers.forcesched import CollectedValidationError, ForceScheduler
from sqlalchemy.pool import QueuePool
from twisted.internet import defer, task

from rustfarm.farmfile import loads
from rustfarm.builder_defs import MAX_BUILDERS_PER_WORKER, TooFewWorkers, builder_defs, share_workers
from rustfarm.master.botmaster import REQUESTS_GATHERED_FOR, FarmBotMaster
from rustfarm.master.builders import MAX_TAGGED_BUILDERS, builder_configs
from rustfarm.master.configuration import buildmaster_config
from rustfarm.master.database import IntegerTextEquality, database_services, db_config
from rustfarm.master.pollers import HeadsFirstGitPoller
from rustfarm.master.prioritizer import prioritize_builders
from rustfarm.master.schedulers import BuilderForceScheduler, TargetsForceScheduler
from rustfarm.state import StateDir

HOST = "x86_64-unknown-linux-gnu"
TRIPLES = [HOST, "i686-unknown-linux-gnu", "aarch64-unknown-linux-gnu",
           "mipsel-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu",
           "s390x-unknown-linux-gnu", "powerpc64le-unknown-linux-gnu",
           "armv7-unknown-linux-gnueabihf", "x86_64-unknown-linux-musl",
           "wasm32-unknown-unknown", "mips-unknown-linux-musl"]


def result_of(deferred: defer.Deferred):
    """The result of a Deferred that has already fired (everything here is synchronous)."""
    found = []
    deferred.addBoth(found.append)
    [value] = found
    if hasattr(value, "raiseException"):
        value.raiseException()
    return value


def big_farm(tmp_path: Path, projects: int, count: int, nightly: bool = True):
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    body = "".join(f"  p{i:04d}: {{source: {source}}}\n" for i in range(projects))
    return loads(f"""\
farm: {{name: big, worker_port: 19989}}
www: {{port: 18010}}
schedule: {{nightly: {'"03:00"' if nightly else 'false'}}}
workers: {{local: {{kind: local, count: {count}}}}}
targets:
""" + "".join(f"  {t}: {{pool: local}}\n" for t in TRIPLES) + "projects:\n" + body,
        tmp_path / "farm.yaml")


# -- workers: at most 1,000 builders each ------------------------------------------

def test_small_pools_give_every_worker_to_every_builder():
    assert share_workers("p", ("a", "b"), 1000) == [("a", "b")] * 1000


@pytest.mark.parametrize("workers,builders", [(2, 1100), (3, 2200), (5, 2200), (4, 4000)])
def test_big_pools_keep_each_worker_within_the_limit(workers, builders):
    names = tuple(f"w{i}" for i in range(workers))
    shared = share_workers("p", names, builders)
    assert len(shared) == builders and all(shared)
    load = Counter(name for chosen in shared for name in chosen)
    assert max(load.values()) <= MAX_BUILDERS_PER_WORKER
    assert max(load.values()) - min(load.values()) <= 1        # evenly
    assert len(shared[0]) == workers * MAX_BUILDERS_PER_WORKER // builders


def test_too_few_workers_is_a_configuration_error_naming_the_pool():
    with pytest.raises(TooFewWorkers) as raised:
        share_workers("docker", ("docker-1", "docker-2"), 2100)
    assert str(raised.value) == (
        "workers.docker: 2100 builders need at least 3 workers (a worker serves at most 1000 "
        "builders; the pool has 2)")


def test_1100_builders_on_two_workers(tmp_path):
    farm = big_farm(tmp_path, 100, 2)
    defs = builder_defs(farm)
    assert len(defs) == 1100
    load = Counter(name for d in defs for name in d.workernames)
    assert load == {"local-1": 550, "local-2": 550}
    # Tags would cost builders x tagged builders rows at every start.
    configs = builder_configs(farm, StateDir.of(farm))
    assert all(not c.tags for c in configs) and len(configs) > MAX_TAGGED_BUILDERS
    assert configs[0].properties["target"] == HOST and configs[0].project == "p0000"


# -- schedulers: per project, not per builder ---------------------------------------

def test_schedulers_are_per_project(tmp_path):
    config = buildmaster_config(big_farm(tmp_path, 100, 2))
    schedulers = config["schedulers"]
    assert len(schedulers) == 400          # force form, force button, verify, nightly (no git)
    by_name = {s.name: s for s in schedulers}
    button = by_name["force-p0042-builder"]
    assert isinstance(button, BuilderForceScheduler)
    assert button._config_kwargs["buttonName"] == "Force build"
    assert sorted(button.builderNames) == sorted(f"p0042:{t}" for t in TRIPLES)
    assert isinstance(by_name["force-p0042"], TargetsForceScheduler)
    # Nightly builds build every target of their own project only.
    assert sorted(by_name["nightly-p0042"].builderNames) == sorted(button.builderNames)
    assert config["prioritizeBuilders"] is prioritize_builders


def builder_button(tmp_path, builders: dict[str, str]) -> BuilderForceScheduler:
    config = buildmaster_config(big_farm(tmp_path, 2, 1))
    [button] = [s for s in config["schedulers"] if s.name == "force-p0000-builder"]

    def get(path, *args, **kwargs):
        assert path[0] == "builders"
        name = builders.get(path[1])
        return defer.succeed({"name": name} if name else None)

    button.parent = SimpleNamespace(master=SimpleNamespace(data=SimpleNamespace(get=get)))
    return button


def test_force_button_builds_the_builder_of_its_page_only(tmp_path):
    button = builder_button(tmp_path, {"7": f"p0000:{HOST}", "8": f"p0001:{HOST}"})
    assert result_of(button.computeBuilderNames(builderid="7")) == [f"p0000:{HOST}"]
    # Another project's builder, or an unknown one: a clear 400, no build.
    for builderid in ("8", "999"):
        with pytest.raises(CollectedValidationError) as refused:
            result_of(button.computeBuilderNames(builderid=builderid))
        assert refused.value.errors == {
            "builderid": f"builder {builderid} is not one of project p0000's builders"}
    # No page (a REST client): the project's targets, as Buildbot's ForceScheduler does.
    assert sorted(result_of(button.computeBuilderNames())) == \
        sorted(f"p0000:{t}" for t in TRIPLES)


def test_one_target_projects_name_their_target_in_the_dialog(tmp_path):
    farm = loads(f"""\
farm: {{name: one}}
workers: {{local: {{kind: local}}}}
targets: {{{HOST}: {{pool: local}}, i686-unknown-linux-gnu: {{pool: local}}}}
projects:
  solo: {{source: {tmp_path}, targets: [{HOST}]}}
  duo: {{source: {tmp_path}}}
""", tmp_path / "farm.yaml")
    labels = {s.name: s._config_kwargs["label"] for s in buildmaster_config(farm)["schedulers"]
              if isinstance(s, ForceScheduler)}
    assert labels["force-solo-builder"] == f"Build solo for {HOST}"
    assert labels["force-duo-builder"] == "Build duo for this target"


# -- prioritizer: one query, kept until a build request changes -----------------------

class FakeMaster:
    def __init__(self, requests, builders):
        self.requests = requests
        self.queries = 0
        self.consumers = []
        self.mq = SimpleNamespace(startConsuming=self.start_consuming)
        self.db = SimpleNamespace(buildrequests=SimpleNamespace(getBuildRequests=self.get))
        by_id = {b.builderid: b for b in builders}
        self.botmaster = SimpleNamespace(getBuilderById=by_id.get)

    def start_consuming(self, callback, filter):
        self.consumers.append((filter, callback))
        return defer.succeed(None)

    def get(self, claimed=None):
        assert claimed is False
        self.queries += 1
        return defer.succeed(list(self.requests))

    def announce(self, *key):
        for filter, callback in self.consumers:
            if all(f is None or f == k for f, k in zip(filter, key)):
                callback(key, {})


def request(builderid, priority, minute):
    return SimpleNamespace(builderid=builderid, priority=priority,
                           submitted_at=datetime.datetime(2026, 1, 1, 12, minute,
                                                          tzinfo=datetime.timezone.utc))


def test_builders_are_sorted_from_one_query_and_idle_ones_left_out():
    builders = [SimpleNamespace(name=f"b{i}", builderid=i) for i in range(1, 1101)]
    master = FakeMaster([request(500, 0, 5), request(7, 0, 1), request(900, 10, 9),
                         request(7, 0, 0), request(42, 0, 1)], builders)
    ordered = result_of(prioritize_builders(master, builders))
    # Highest priority first, then the oldest request, then the name: Buildbot's order.
    assert [b.name for b in ordered] == ["b900", "b7", "b42", "b500"]
    assert master.queries == 1
    # Only the builders offered are returned.
    assert [b.name for b in result_of(prioritize_builders(master, builders[:100]))] == \
        ["b7", "b42"]
    assert master.queries == 1, "nothing changed: the summary is reused"
    master.requests = [request(3, 0, 1)]
    master.announce("buildrequests", "1", "claimed")
    assert [b.name for b in result_of(prioritize_builders(master, builders))] == ["b3"]
    assert master.queries == 2
    master.announce("builds", "1", "finished")          # not about requests
    result_of(prioritize_builders(master, builders))
    assert master.queries == 2
    # A stopped master's requests are unclaimed without buildrequests messages.
    master.requests.append(request(4, 0, 0))
    master.announce("masters", "2", "stopped")
    assert [b.name for b in result_of(prioritize_builders(master, builders))] == ["b4", "b3"]


def test_a_new_request_is_in_the_summary_the_distributor_sorts_by():
    """With several masters, messages come through the WAMP router, the prioritizer's
    and the botmaster's each on its own subscription: the botmaster's may come first.
    Builds start REQUESTS_GATHERED_FOR after it, sorted from a summary that has the new
    request, not from the one kept from before it."""
    builders = [SimpleNamespace(name="b1", builderid=1)]
    master = FakeMaster([], builders)
    master.reactor = task.Clock()
    assert result_of(prioritize_builders(master, builders)) == []     # nothing waiting
    botmaster = FarmBotMaster()
    botmaster.parent = SimpleNamespace(master=master)
    botmaster._builders_byid = {1: builders[0]}
    offered = []
    botmaster.brd = SimpleNamespace(maybeStartBuildsOn=lambda names: offered.append(
        (names, result_of(prioritize_builders(master, builders)))))
    master.requests = [request(1, 0, 0)]
    botmaster._buildrequest_added(("buildrequests", "5", "new"), {"builderid": 1})
    assert offered == []
    master.reactor.advance(REQUESTS_GATHERED_FOR)
    assert offered == [(["b1"], builders)]


# -- git polls: one ls-remote while nothing moved --------------------------------------

def git_poller(tmp_path, heads: dict[str, str], state: dict, clock=None):
    poller = HeadsFirstGitPoller(repourl="file:///nowhere/hello.git", project="hello",
                                 branches=["main", "stable"], pollInterval=60,
                                 workdir=str(tmp_path / "poller"))
    poller.parent = SimpleNamespace(master=SimpleNamespace(reactor=clock or task.Clock()))
    result_of(poller.reconfigService(*poller._config_args, **poller._config_kwargs))
    commands = []

    def dovccmd(command, args, path=None, auth_files_path=None, initial_stdin=None):
        commands.append(command)
        assert command == "ls-remote"
        return defer.succeed("".join(f"{sha}\trefs/heads/{b}\n" for b, sha in heads.items()))

    poller._dovccmd = dovccmd
    poller.getState = lambda key, default=None: defer.succeed(state.get(key, default))
    return poller, commands


def test_unchanged_heads_skip_the_full_poll(tmp_path, monkeypatch):
    full = []
    monkeypatch.setattr("buildbot.changes.gitpoller.GitPoller.poll",
                        lambda self: full.append(self) or defer.succeed(None))
    heads = {"main": "a" * 40, "stable": "b" * 40}
    poller, commands = git_poller(tmp_path, heads, {"lastRev": dict(heads)})
    result_of(poller.poll())
    assert commands == ["ls-remote"] and full == []
    heads["main"] = "c" * 40                  # a push
    result_of(poller.poll())
    assert len(full) == 1
    # Never polled before: the full poll records where the branches are.
    fresh, commands = git_poller(tmp_path, heads, {})
    result_of(fresh.poll())
    assert commands == [] and len(full) == 2


def test_a_project_never_polled_starts_from_its_heads_and_polls_in_full_later(tmp_path,
                                                                             monkeypatch):
    clock = task.Clock()
    heads = {"main": "a" * 40, "stable": "b" * 40}
    state: dict = {}
    poller, commands = git_poller(tmp_path, heads, state, clock)
    poller.setState = lambda key, value: defer.succeed(state.__setitem__(key, value))
    polled = []
    monkeypatch.setattr(HeadsFirstGitPoller, "poll",
                        lambda self: polled.append(clock.seconds()) or defer.succeed(None))
    monkeypatch.setattr("rustfarm.master.pollers.random.uniform", lambda low, high: 30.0)
    result_of(poller.activate())
    assert commands == ["ls-remote"]
    assert state["lastRev"] == heads and poller.lastRev == heads
    clock.advance(0)
    assert polled == [], "the full poll (git fetch) waits for its point of the interval"
    clock.advance(30)
    assert polled == [30]
    result_of(poller.deactivate())


def test_a_project_whose_remote_says_nothing_is_polled_in_full_at_once(tmp_path, monkeypatch):
    clock = task.Clock()
    poller, commands = git_poller(tmp_path, {}, {}, clock)     # an empty answer
    polled = []
    monkeypatch.setattr(HeadsFirstGitPoller, "poll",
                        lambda self: polled.append(clock.seconds()) or defer.succeed(None))
    result_of(poller.activate())
    clock.advance(0)
    assert commands == ["ls-remote"] and polled == [0]
    result_of(poller.deactivate())


def test_pollers_start_at_a_random_point_of_their_interval(tmp_path, monkeypatch):
    clock = task.Clock()
    poller, _ = git_poller(tmp_path, {}, {"lastRev": {"main": "a" * 40}}, clock)
    polled = []
    monkeypatch.setattr(HeadsFirstGitPoller, "poll",
                        lambda self: polled.append(clock.seconds()) or defer.succeed(None))
    windows = []
    monkeypatch.setattr("rustfarm.master.pollers.random.uniform",
                        lambda low, high: windows.append((low, high)) or 17.5)
    result_of(poller.activate())
    assert windows == [(0, 60)]
    clock.advance(17)
    assert polled == []
    clock.advance(1)
    assert polled == [18]
    clock.advance(60)
    assert polled == [18, 78], "then every interval"
    result_of(poller.deactivate())


# -- database ----------------------------------------------------------------------------

def test_sqlite_keeps_one_connection_postgresql_gets_its_repair():
    sqlite = db_config("sqlite:////var/farm/state.sqlite")
    assert sqlite["engine_kwargs"]["poolclass"] is QueuePool
    # Equal from one load of the configuration to the next: a reload may not change it.
    assert db_config("sqlite:////var/farm/state.sqlite") == sqlite
    assert db_config("postgresql://farm@db/farm") == {
        "db_url": "postgresql://farm@db/farm", "engine_kwargs": {"pool_pre_ping": True}}
    assert [type(s) for s in database_services("postgresql://farm@db/farm")] == \
        [IntegerTextEquality]
    assert database_services("sqlite:////var/farm/state.sqlite") == []
