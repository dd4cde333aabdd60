"""A docker pool of a farm of two masters (a private PostgreSQL server, the farm's
crossbar, real masters, containers of the real worker image on the system engine):
each master's containers reach that master, and a master killed mid-build has its
build retried in a container of the other master; the container it left is removed
once it runs again, and none is left after farm down. Each master runs the pool's
workers, in cache volumes of its own. A compile job taken by a master that is then
killed is answered by the other, and by the killed one once it runs again."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests
from buildbot.process.results import RETRY, SUCCESS

from rustfarm.cli.processes import read_pid
from rustfarm.workers.docker_volumes import CACHE_DIR
from tests.integration.conftest import (  # noqa: F401 (fixtures)
    postgresql_installed,
    reachable_directory,
    router_installed,
)
from tests.support.binaries import run_downloaded
from tests.support.containers import pool_container_ids, pool_containers
from tests.support.farm import RunningFarm, two_masters_yaml, wait_until

from .conftest import FIXTURES, TARGETS, remove_cache_volumes

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRIPLE = "mipsel-unknown-linux-musl"
POOL = "fo"
MASTER_TIMEOUT = 15


@pytest.fixture(scope="module")
def failover_farm(built_chain, postgresql_installed, router_installed):  # noqa: F811
    # The killed build must still be compiling: no target directory of an earlier run.
    remove_cache_volumes()
    directory = reachable_directory("rustfarm-dkfailover-")
    slow = directory / "slow"
    shutil.copytree(FIXTURES / "slow", slow, ignore=shutil.ignore_patterns("target"))
    farm = RunningFarm(directory / "farm", "")
    # One container worker, defined on both masters; the build script waits 15 s, long
    # enough to kill the master running the build in the middle of it.
    farm.config.write_text(farm.config.read_text() + two_masters_yaml(
        farm, master_timeout=MASTER_TIMEOUT) + f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, memory: 2g, standby: 0}}
targets:
  {TRIPLE}: {{pool: {POOL}, image: "{built_chain.reference(TRIPLE)}"}}
compile: {{targets: [{TRIPLE}], keep: 600}}
projects:
  slow: {{source: {slow}, binaries: [slow], test: false}}
""")
    farm.urls = {"first": farm.first_url, "second": farm.second_url}
    try:
        yield farm.up()
    finally:
        farm.url = farm.urls["first"]
        farm.down()
        deadline = time.monotonic() + 60
        while pool_containers(POOL) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = pool_containers(POOL)
        shutil.rmtree(directory, ignore_errors=True)
    assert not left, f"containers left after farm down: {left}"


def running(name: str) -> bool:
    state = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name],
                           capture_output=True, text=True)
    return state.stdout.strip() == "true"


def check_binary(url: str, dest: Path, headers: dict | None = None) -> None:
    assert "slow, but done" in run_downloaded(url, dest, "slow", TARGETS[TRIPLE], headers)


def test_a_master_killed_mid_build_has_its_container_build_retried_by_the_other(
        failover_farm, tmp_path):
    farm = failover_farm
    ids = {m["name"].rsplit("/", 1)[1]: m["masterid"] for m in farm.api("masters")["masters"]}
    name_of = {masterid: name for name, masterid in ids.items()}
    before = set(pool_container_ids(POOL))
    farm.login()
    [brid] = farm.force("force-slow", targets=[TRIPLE]).values()

    def building() -> dict | None:
        builds = farm.api("builds", buildrequestid=brid)["builds"]
        steps = farm.steps(builds[-1]) if builds else []
        busy = [s for s in steps if s["name"] == "cargo build" and s["started_at"]
                and not s["complete"]]
        return builds[-1] if busy else None

    killed = wait_until(building, 300, "the build did not reach cargo build")
    # Either master may have claimed the request: the one running it is killed.
    victim = name_of[killed["masterid"]]
    survivor = "second" if victim == "first" else "first"
    # The build runs in a container the victim started, which reached the victim.
    [orphan] = set(pool_container_ids(POOL)) - before
    assert running(orphan)
    os.kill(read_pid(farm.state / "masters" / victim / "twistd.pid"), signal.SIGKILL)

    # From now on the farm is seen through the survivor.
    farm.url = farm.urls[survivor]
    farm.session = requests.Session()
    farm.login()
    rebuilt = farm.wait_for_build(brid, timeout=MASTER_TIMEOUT * 2 + 300)
    assert rebuilt["results"] == SUCCESS, farm.step_log(rebuilt, "cargo build")
    assert rebuilt["masterid"] == ids[survivor]
    builds = farm.api("builds", buildrequestid=brid)["builds"]
    assert [(b["masterid"], b["results"]) for b in builds] == [
        (ids[victim], RETRY), (ids[survivor], SUCCESS)]
    props = farm.api(f"builds/{rebuilt['buildid']}", property="*")["builds"][0]["properties"]
    assert props["workername"][0] == f"{POOL}-1"
    # The artifact is served by the survivor and, once it runs again, by the victim.
    [archive] = [u for u in farm.artifact_urls(rebuilt) if u.endswith(".tar.gz")]
    assert archive.startswith(farm.urls[survivor])
    check_binary(archive, tmp_path / "from-survivor")

    # The victim's container outlived it; `farm up` starts the victim again, which
    # removes that container and serves the same artifact and history.
    farm.up()
    wait_until(lambda: orphan not in pool_container_ids(POOL), 60,
               f"the killed master's container {orphan} was not removed")
    victim_archive = archive.replace(farm.urls[survivor], farm.urls[victim], 1)
    check_binary(victim_archive, tmp_path / "from-victim")
    seen = requests.get(f"{farm.urls[victim]}api/v2/builds", params={"buildrequestid": brid},
                        timeout=30).json()["builds"]
    assert [b["results"] for b in seen] == [RETRY, SUCCESS]

    # The farm builds in containers again, forced through either master.
    for name in ("first", "second"):
        farm.url = farm.urls[name]
        farm.session = requests.Session()
        farm.login()
        [again] = farm.force("force-slow", targets=[TRIPLE]).values()
        done = farm.wait_for_build(again, timeout=300)
        assert done["results"] == SUCCESS, farm.step_log(done, "cargo build")
    farm.url = farm.urls["first"]


def cache_volume_of(container: str) -> str:
    mounts = subprocess.run(["docker", "inspect", "--format",
                             "{{range .Mounts}}{{.Name}}={{.Destination}} {{end}}", container],
                            capture_output=True, text=True, check=True).stdout.split()
    [volume] = [m.split("=")[0] for m in mounts if m.endswith(f"={CACHE_DIR}")]
    return volume


def test_each_master_runs_the_pool_s_workers_with_cache_volumes_of_its_own(failover_farm):
    """Every master defines the pool's workers, so with one worker each master runs a
    container: two builds of one builder run at once, one per master, each in that
    master's own cache volume (Buildbot's lock on a volume holds within one master)."""
    farm = failover_farm
    farm.url = farm.urls["first"]
    farm.session = requests.Session()
    farm.login()
    ids = {m["masterid"]: m["name"].rsplit("/", 1)[1] for m in farm.api("masters")["masters"]}
    # Each master's volume has the project built by the test before: a new wait makes
    # the build script run again, so both builds take seconds, not a warm rebuild's
    # fraction of one, and overlap.
    (farm.directory.parent / "slow" / "slow.txt").write_text("16\n")
    # The containers of the test before may still be going away; they have the names
    # the new ones will have, so the new ones are told apart by their ids.
    before = set(pool_container_ids(POOL))
    brids = [brid for _ in range(2) for brid in farm.force("force-slow", targets=[TRIPLE]).values()]

    def both_running() -> set | None:
        started = {c for c in set(pool_container_ids(POOL)) - before if running(c)}
        return started if len(started) == 2 else None

    containers = wait_until(both_running, 300, "two containers never ran at once")
    volumes = {cache_volume_of(c) for c in containers}
    assert len(volumes) == 2, volumes
    assert all(any(f"-{name}-slow-" in v for v in volumes) for name in ("first", "second"))
    done = [farm.wait_for_build(brid, timeout=300) for brid in brids]
    failed = [b for b in done if b["results"] != SUCCESS]
    assert not failed, "\n".join(farm.all_logs(b)[-3000:] for b in failed)
    assert {ids[b["masterid"]] for b in done} == {"first", "second"}


def upload_of(project: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(project.rglob("*")):
            if "target" not in path.relative_to(project).parts:
                tar.add(path, arcname=path.relative_to(project).as_posix(), recursive=False)
    return buffer.getvalue()


def test_a_compile_job_outlives_the_master_that_took_it(failover_farm, tmp_path):
    """The upload is answered (202 and a job) by the first master, which is then killed:
    the second answers for the job until it ends and hands out its binary, and so does
    the first once it runs again."""
    farm = failover_farm
    token = farm.farm("token", "admin").stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    (farm.directory.parent / "slow" / "slow.txt").write_text("5\n")
    taken = requests.post(f"{farm.urls['first']}plugins/compile/jobs",
                          params={"target": TRIPLE, "wait": "0"},
                          data=upload_of(farm.directory.parent / "slow"),
                          headers={**auth, "Content-Type": "application/gzip"}, timeout=300)
    assert taken.status_code == 202, taken.text
    job = taken.json()["job"]
    os.kill(read_pid(farm.state / "masters" / "first" / "twistd.pid"), signal.SIGKILL)

    def ended(url: str):
        def check() -> dict | None:
            reply = requests.get(f"{url}plugins/compile/jobs/{job}", headers=auth, timeout=30)
            assert reply.status_code == 200, (reply.status_code, reply.text)
            return reply.json() if reply.json()["state"] != "running" else None
        return check

    try:
        answer = wait_until(ended(farm.urls["second"]), MASTER_TIMEOUT * 2 + 300,
                            "the job did not end")
    except AssertionError as late:
        farm.url = farm.urls["second"]
        builds = farm.api("builds", order="-buildid", limit=5)["builds"]
        log = (farm.state / "masters" / "second" / "twistd.log").read_text()[-6000:]
        raise AssertionError(f"{late}; last builds: {builds}; the second master's log:\n"
                             f"{log}") from None
    assert answer["state"] == "succeeded", answer
    assert answer["targets"][TRIPLE]["result"] == "success", answer
    result = f"plugins/compile/jobs/{job}/result"
    wanted = {**auth, "Accept": "application/gzip"}
    check_binary(farm.urls["second"] + result, tmp_path / "from-second", wanted)

    farm.up()
    again = ended(farm.urls["first"])()
    assert again is not None and again["state"] == "succeeded", again
    check_binary(farm.urls["first"] + result, tmp_path / "from-first", wanted)
    refused = requests.get(f"{farm.urls['first']}plugins/compile/jobs/../../etc",
                           headers=auth, timeout=30)
    assert refused.status_code == 404
