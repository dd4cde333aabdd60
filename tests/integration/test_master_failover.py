"""Losing a master, and the router, of a farm of two masters (a private PostgreSQL
server, the farm's crossbar, real masters and a real local worker): a master killed
mid-build has its build retried through the other master, its worker moves there, and
both builds stay in the history; a killed router is started again by the farm, and so
are the masters that stopped with it. A farm down during a farm up leaves nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from buildbot.process.results import RETRY, SUCCESS

from rustfarm.cli.lifecycle_lock import LOCK_FILE
from rustfarm.cli.processes import read_pid
from rustfarm.cli.supervisor import CHECK_INTERVAL
from tests.support.farm import FARM, RunningFarm, two_masters_yaml, wait_until

from .conftest import HOST_TARGET, reachable_directory, require_cargo

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
MASTER_TIMEOUT = 15


@pytest.fixture(scope="module")
def failover_farm(postgresql_installed, router_installed):
    require_cargo()
    directory = reachable_directory("rustfarm-failover-")
    farm = RunningFarm(directory, "")
    # The one local worker attaches to the first master; the slow project's build script
    # sleeps 15 s, long enough to kill the first master in the middle of its build.
    farm.config.write_text(farm.config.read_text() + two_masters_yaml(
        farm, master_timeout=MASTER_TIMEOUT) + f"""\
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  slow: {{source: {FIXTURES / 'slow'}, test: false}}
""")
    try:
        yield farm.up()
    finally:
        farm.url = farm.first_url
        farm.down()
        shutil.rmtree(directory, ignore_errors=True)


def master_pidfile(farm: RunningFarm, name: str) -> Path:
    return farm.state / "masters" / name / "twistd.pid"


def master_ids(farm: RunningFarm) -> dict[str, int]:
    return {m["name"].rsplit("/", 1)[1]: m["masterid"] for m in farm.api("masters")["masters"]}


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}api/v2/masters", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def worker_masters(farm: RunningFarm) -> list[int]:
    [worker] = [w for w in farm.api("workers")["workers"] if w["name"] == "local-1"]
    return [c["masterid"] for c in worker["connected_to"]]


def test_a_master_killed_mid_build_has_its_build_retried_through_the_other(failover_farm):
    farm = failover_farm
    ids = master_ids(farm)
    assert worker_masters(farm) == [ids["first"]]
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()

    def building() -> dict | None:
        builds = farm.api("builds", buildrequestid=brid)["builds"]
        steps = farm.steps(builds[-1]) if builds else []
        running = [s for s in steps if s["name"] == "cargo build" and s["started_at"]
                   and not s["complete"]]
        return builds[-1] if running else None

    killed = wait_until(building, 120, "the build did not reach cargo build")
    assert killed["masterid"] == ids["first"]
    os.kill(read_pid(master_pidfile(farm, "first")), signal.SIGKILL)
    killed_at = time.monotonic()

    # From now on the farm is seen through the second master.
    farm.url = farm.second_url
    farm.session = requests.Session()
    wait_until(lambda: worker_masters(farm) == [ids["second"]], 60,
               "the worker did not attach to the second master")
    rebuilt = farm.wait_for_build(brid, timeout=MASTER_TIMEOUT * 2 + 120)
    assert rebuilt["results"] == SUCCESS, farm.step_log(rebuilt, "cargo build")
    assert rebuilt["masterid"] == ids["second"]
    # Declared dead after failover.master_timeout, not Buildbot's ten minutes.
    assert time.monotonic() - killed_at < MASTER_TIMEOUT * 2 + 90

    request = farm.api(f"buildrequests/{brid}")["buildrequests"][0]
    assert request["complete"] and request["results"] == SUCCESS
    assert request["claimed_by_masterid"] == ids["second"]
    # Both builds stay in the history: the killed one ends RETRY, with its steps.
    builds = farm.api("builds", buildrequestid=brid)["builds"]
    assert [(b["buildid"], b["masterid"], b["results"]) for b in builds] == [
        (killed["buildid"], ids["first"], RETRY), (rebuilt["buildid"], ids["second"], SUCCESS)]
    steps = {s["name"]: s["results"] for s in farm.steps(builds[0])}
    assert steps["cargo build"] == RETRY and steps["fetch source"] == SUCCESS
    assert farm.step_log(builds[0], "fetch source")
    masters = {m["masterid"]: m["active"] for m in farm.api("masters")["masters"]}
    assert masters == {ids["first"]: False, ids["second"]: True}

    # `farm up` starts the killed master again; it joins the farm and sees the history.
    farm.up()
    assert answers(farm.first_url)
    seen = requests.get(f"{farm.first_url}api/v2/builds", params={"buildrequestid": brid},
                        timeout=30).json()["builds"]
    assert [b["results"] for b in seen] == [RETRY, SUCCESS]


def test_a_killed_router_is_started_again_with_the_masters_it_stopped(failover_farm):
    farm = failover_farm
    farm.url = farm.second_url
    state = farm.state
    assert "supervisor: running (pid " in farm.farm("status").stdout
    router = read_pid(state / "router" / "crossbar.pid")
    masters = {name: read_pid(master_pidfile(farm, name)) for name in ("first", "second")}
    assert router and all(masters.values())
    os.killpg(router, signal.SIGKILL)

    def restarted() -> bool:
        pids = {name: read_pid(master_pidfile(farm, name)) for name in masters}
        now = read_pid(state / "router" / "crossbar.pid")
        return (now not in (None, router) and all(pids.values())
                and all(pids[n] != masters[n] for n in masters)
                and answers(farm.first_url) and answers(farm.second_url))

    wait_until(restarted, 180, "the router and both masters did not run again")

    def supervisor_log() -> str:
        return (state / "supervisor.log").read_text()

    # It notes a master once that master's log says it runs, a moment after it answers.
    wait_until(lambda: "master second runs again" in supervisor_log(), 30,
               "the supervisor did not note the second master running")
    log = supervisor_log()
    assert "the router is not running: starting it" in log
    assert "master first runs again" in log
    active = wait_until(lambda: [m for m in farm.api("masters")["masters"] if m["active"]]
                        if len([m for m in farm.api("masters")["masters"]
                                if m["active"]]) == 2 else None,
                        60, "both masters were not active again")
    assert len(active) == 2
    wait_until(lambda: worker_masters(farm), 120, "the worker did not attach again")

    # The farm builds again.
    farm.session = requests.Session()
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    assert farm.wait_for_build(brid, timeout=180)["results"] == SUCCESS
    status = farm.farm("status").stdout
    assert "router: running (pid " in status and "does not answer" not in status


def farm_processes(directory: Path) -> list[str]:
    """The command lines of running processes that name the farm's directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(directory) in line and state not in ("Z", "X"):
            found.append(f"{proc.name}: {line.strip()}")
    return found


def test_farm_down_during_a_farm_up_waits_for_it_then_leaves_nothing_running(failover_farm):
    """A farm up that starts a killed master again, and a farm down while it does: the
    down waits for the up, then stops every process, the supervisor among them."""
    farm = failover_farm
    os.kill(read_pid(master_pidfile(farm, "second")), signal.SIGKILL)
    up = subprocess.Popen([FARM, "--config", str(farm.config), "up", "--no-images"],
                          cwd=farm.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    lock = farm.state / LOCK_FILE
    try:
        wait_until(lambda: lock.exists() and "farm up" in lock.read_text(), 60,
                   "farm up did not take the lifecycle lock")
        down = farm.farm("down", timeout=600)
        assert "waiting for farm up (pid " in down.stdout, down.stdout
        started, _ = up.communicate(timeout=300)
    finally:
        up.kill()
    assert up.returncode == 0, started
    assert "stopped the supervisor" in down.stdout, down.stdout
    # The up finished first: the master it started is among those the down stopped.
    assert "stopped master second" in down.stdout, down.stdout
    left = wait_until(lambda: not farm_processes(farm.directory) or None, 30,
                      f"processes left: {farm_processes(farm.directory)}")
    assert left
    time.sleep(3 * CHECK_INTERVAL)
    assert farm_processes(farm.directory) == []
