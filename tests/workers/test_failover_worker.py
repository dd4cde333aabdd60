"""Local workers of a farm of several masters: the tac `farm up` writes for them, and the
worker that moves to another master when its own is lost."""

from __future__ import annotations

import json

import pytest
from twisted.application import service
from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.internet.error import ConnectError, ConnectionRefusedError

from rustfarm.cli.tacfiles import WORKER_TAC, write_worker_tac
from rustfarm.workers.failover_worker import FailoverEndpoint, FailoverWorker


class Endpoint:
    """An endpoint that refuses, or connects with ``protocol``; records its calls."""

    def __init__(self, protocol=None):
        self.protocol = protocol
        self.calls = 0

    def connect(self, factory):
        self.calls += 1
        if self.protocol is None:
            return defer.fail(ConnectionRefusedError())
        return defer.succeed(self.protocol)


def outcome(deferred: defer.Deferred):
    results = []
    deferred.addBoth(results.append)
    [result] = results
    return result


def served_worker(basedir, monkeypatch) -> FailoverWorker:
    """The worker the .tac `farm up` wrote serves, as twistd runs it (its own master's
    port is not waited for: no master runs here)."""
    monkeypatch.setattr("rustfarm.workers.local_application.wait_for_port",
                        lambda host, port: False)
    namespace = {"__file__": str(basedir / "buildbot.tac")}
    exec(compile((basedir / "buildbot.tac").read_text(), "buildbot.tac", "exec"), namespace)
    [worker] = list(service.IServiceCollection(namespace["application"]))
    assert namespace["basedir"] == str(basedir)
    return worker


def test_one_master_is_the_worker_s_only_master(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("pw\n")
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9001, "local-1", secret)
    assert (tmp_path / "w" / "buildbot.tac").read_text() == WORKER_TAC
    assert "Application('buildbot-worker')" in WORKER_TAC    # buildbot-worker looks for it
    settings = json.loads((tmp_path / "w" / "worker.json").read_text())
    assert settings == {"name": "local-1", "masters": [["127.0.0.1", 9001]],
                        "password_file": str(secret)}
    worker = served_worker(tmp_path / "w", monkeypatch)
    assert [label for label, _ in worker.endpoint.endpoints] == ["127.0.0.1:9001"]


def test_with_several_masters_the_worker_tries_its_own_then_the_others(tmp_path, monkeypatch):
    (tmp_path / "secret").write_text("pw\n")
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9002, "local-2", tmp_path / "secret",
                     other_ports=(9003, 9001))
    worker = served_worker(tmp_path / "w", monkeypatch)
    assert [label for label, _ in worker.endpoint.endpoints] == [
        "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:9001"]


def test_the_endpoint_connects_to_the_first_master_that_answers():
    own, second, third = Endpoint(), Endpoint("protocol"), Endpoint("other")
    endpoint = FailoverEndpoint([("a:1", own), ("b:2", second), ("c:3", third)])
    assert outcome(endpoint.connect(object())) == "protocol"
    assert (own.calls, second.calls, third.calls) == (1, 1, 0)
    assert endpoint.connected_to == "b:2"


def test_the_endpoint_goes_back_to_its_own_master_once_it_answers():
    own, second = Endpoint("own"), Endpoint("second")
    endpoint = FailoverEndpoint([("a:1", own), ("b:2", second)])
    assert outcome(endpoint.connect(object())) == "own"
    assert second.calls == 0


def test_the_endpoint_fails_when_no_master_answers():
    endpoint = FailoverEndpoint([("a:1", Endpoint()), ("b:2", Endpoint())])
    failure = outcome(endpoint.connect(object()))
    assert failure.check(ConnectError)
    assert "no master of the farm answers: a:1: " in str(failure.value)
    assert "; b:2: " in str(failure.value)


def test_the_worker_connects_through_one_service_to_every_master(tmp_path):
    worker = FailoverWorker([("127.0.0.1", 9001), ("127.0.0.1", "9002")], "local-1",
                            "password", str(tmp_path), 600, umask=0o022, maxdelay=30,
                            numcpus=None, allow_shutdown=None, maxRetries=None,
                            protocol="pb", useTls=0, delete_leftover_dirs=0)
    # Buildbot's own connection to the first master is replaced, not doubled.
    assert len([s for s in worker.services if isinstance(s, ClientService)]) == 1
    assert [label for label, _ in worker.endpoint.endpoints] == ["127.0.0.1:9001",
                                                                 "127.0.0.1:9002"]


def test_the_worker_refuses_what_it_cannot_fail_over(tmp_path):
    with pytest.raises(ValueError, match="pb protocol over TCP"):
        FailoverWorker([("127.0.0.1", 9001)], "w", "p", str(tmp_path), 600, useTls=1)


def test_after_this_machine_s_masters_the_worker_tries_other_machines(tmp_path, monkeypatch):
    (tmp_path / "secret").write_text("pw\n")
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9002, "local-2", tmp_path / "secret",
                     other_ports=(9001,), elsewhere=(("build2.internal", 9002),))
    worker = served_worker(tmp_path / "w", monkeypatch)
    assert [label for label, _ in worker.endpoint.endpoints] == [
        "127.0.0.1:9002", "127.0.0.1:9001", "build2.internal:9002"]
