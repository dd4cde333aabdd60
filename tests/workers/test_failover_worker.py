"""Local workers of a farm of several masters: the tac `farm up` writes for them, and the
worker that moves to another master when its own is lost."""

from __future__ import annotations

import pytest
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


def test_one_master_is_the_worker_s_only_master(tmp_path):
    secret = tmp_path / "secret"
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9001, "local-1", secret)
    text = (tmp_path / "w" / "buildbot.tac").read_text()
    assert text == WORKER_TAC.format(basedir=str(tmp_path / "w"), host="127.0.0.1",
                                     port=9001, name="local-1", password_file=str(secret),
                                     masters=[("127.0.0.1", 9001)])
    compile(text, "buildbot.tac", "exec")
    assert "s = FailoverWorker([('127.0.0.1', 9001)], 'local-1', passwd," in text


def test_with_several_masters_the_worker_tries_its_own_then_the_others(tmp_path):
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9002, "local-2", tmp_path / "secret",
                     other_ports=(9003, 9001))
    text = (tmp_path / "w" / "buildbot.tac").read_text()
    compile(text, "buildbot.tac", "exec")
    assert "from rustfarm.workers.failover_worker import FailoverWorker\n" in text
    assert ("s = FailoverWorker([('127.0.0.1', 9002), ('127.0.0.1', 9003), "
            "('127.0.0.1', 9001)], 'local-2', passwd, basedir, 600,") in text
    # It still waits for its own master's port as `farm up` starts them together.
    assert "socket.create_connection(('127.0.0.1', 9002), timeout=1)" in text


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


def test_after_this_machine_s_masters_the_worker_tries_other_machines(tmp_path):
    write_worker_tac(tmp_path / "w", "127.0.0.1", 9002, "local-2", tmp_path / "secret",
                     other_ports=(9001,), elsewhere=(("build2.internal", 9002),))
    text = (tmp_path / "w" / "buildbot.tac").read_text()
    compile(text, "buildbot.tac", "exec")
    assert ("s = FailoverWorker([('127.0.0.1', 9002), ('127.0.0.1', 9001), "
            "('build2.internal', 9002)], 'local-2', passwd, basedir, 600,") in text
