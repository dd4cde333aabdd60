"""Stopping a farm loses no build: `farm down` stops running builds and queues
them again for the next `farm up` (or lets them finish with --wait), starts
nothing new, and leaves no process behind; a source that never answers cannot
hold the master up."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from tests.support.farm import RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET, require_cargo

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "crates"


@pytest.fixture
def slow_farm(tmp_path):
    require_cargo()
    farm = RunningFarm(tmp_path, local_farm_yaml(
        f"  slow: {{source: {FIXTURES / 'slow'}, test: false}}\n", workers=1,
        targets=f"  {HOST_TARGET}: {{pool: local}}\n"))
    try:
        yield farm.up()
    finally:
        farm.down()


def wait_for_step(farm, brid: int, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = farm.api("builds", buildrequestid=brid)["builds"]
        if builds:
            steps = farm.steps(builds[-1])
            if any(s["name"] == name and s["started_at"] and not s["complete"] for s in steps):
                return builds[-1]
        time.sleep(0.2)
    raise AssertionError(f"step {name} of build request {brid} did not start in {timeout} s")


def farm_processes(farm) -> list[str]:
    listed = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in listed.splitlines() if str(farm.state) in line
            and "ps -eo" not in line]


def test_a_build_stopped_by_farm_down_runs_again_after_farm_up(slow_farm):
    farm = slow_farm
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    first = wait_for_step(farm, brid, "cargo build")
    started = time.monotonic()
    down = farm.farm("down")
    assert time.monotonic() - started < 20
    assert "killing it" not in down.stdout
    assert "running builds are queued again" in down.stdout
    assert farm_processes(farm) == []

    farm.up()
    farm.session.cookies.clear()
    result = farm.wait_for_build(brid, timeout=120)
    assert result["results"] == 0 and result["buildid"] != first["buildid"]
    builds = farm.api("builds", buildrequestid=brid)["builds"]
    assert builds[0]["results"] == 5, "the interrupted build ends RETRY, not CANCELLED"


def test_farm_down_wait_finishes_running_builds_and_starts_no_new_one(slow_farm):
    farm = slow_farm
    farm.login()
    [running] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    [queued] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    wait_for_step(farm, running, "cargo build")
    down = farm.farm("down", "--wait", timeout=120)
    assert "waiting for the running builds to finish" in down.stdout
    assert farm_processes(farm) == []

    farm.up()
    farm.session.cookies.clear()
    finished = farm.api("builds", buildrequestid=running)["builds"]
    assert [b["results"] for b in finished] == [0], "it finished before the master stopped"
    # The queued request never started before the stop; it runs now.
    result = farm.wait_for_build(queued, timeout=120)
    assert result["results"] == 0
    assert len(farm.api("builds", buildrequestid=queued)["builds"]) == 1


@pytest.fixture
def silent_git_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_source_that_never_answers_fails_the_build_after_fetch_timeout(tmp_path,
                                                                        silent_git_server):
    require_cargo()
    farm = RunningFarm(tmp_path, local_farm_yaml(f"""\
  silent: {{source: "git://127.0.0.1:{silent_git_server}/silent.git", fetch_timeout: 3,
            poll_interval: 0}}
  stuck: {{source: "git://127.0.0.1:{silent_git_server}/stuck.git", poll_interval: 0}}
""", workers=1, targets=f"  {HOST_TARGET}: {{pool: local}}\n"))
    try:
        farm.up()
        farm.login()
        [brid] = farm.force("force-silent", targets=[HOST_TARGET]).values()
        result = farm.wait_for_build(brid, timeout=60)
        assert result["results"] == 2
        log = farm.step_log(result, "snapshot")
        assert "did not finish within 3 s (fetch_timeout); the source does not answer" in log

        # A fetch still waiting (600 s) does not hold up `farm down`.
        [stuck] = farm.force("force-stuck", targets=[HOST_TARGET]).values()
        wait_for_step(farm, stuck, "snapshot")
        started = time.monotonic()
        down = farm.farm("down")
        assert time.monotonic() - started < 20 and "killing it" not in down.stdout
        left = subprocess.run(["pgrep", "-f", f"127.0.0.1:{silent_git_server}"],
                              capture_output=True, text=True).stdout.split()
        assert left == [], "git processes were left behind"
    finally:
        farm.down()
