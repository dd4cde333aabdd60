"""Faults of container builds: a missing image, a killed container, no Docker engine."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from tests.support.farm import EXAMPLE, RunningFarm

from .conftest import (FIXTURES, POOL, farm_containers, remove_cache_volumes,
                       wait_until_no_containers)

pytestmark = pytest.mark.docker

MIPSEL = "mipsel-unknown-linux-gnu"
HOST = "x86_64-unknown-linux-gnu"


@pytest.fixture(scope="module")
def fault_farm(built_chain, tmp_path_factory):
    farm = RunningFarm(tmp_path_factory.mktemp("faults"), f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, standby: 0}}
  {POOL}small: {{kind: docker, count: 1, memory: 256m, standby: 0}}
targets:
  {MIPSEL}: {{pool: {POOL}, image: "{built_chain.reference(MIPSEL)}"}}
  aarch64-unknown-linux-gnu: {{pool: {POOL}, image: "rustfarm/aarch64-unknown-linux-gnu:0000missing0"}}
  {HOST}: {{pool: {POOL}small, image: "{built_chain.reference(HOST)}"}}
projects:
  hog:
    source: {FIXTURES / 'hog'}
    targets: [{HOST}]
    test: false
  slow:
    source: {FIXTURES / 'slow'}
    targets: [{MIPSEL}]
    test: false
  deps:
    source: {FIXTURES / 'deps-demo'}
    targets: [{MIPSEL}]
    binaries: [deps-demo]
    test: false
  arch:
    source: {FIXTURES / 'hello-arch'}
    targets: [aarch64-unknown-linux-gnu]
    binaries: [hello-arch]
""")
    try:
        yield farm.up()
    finally:
        farm.down()
    assert wait_until_no_containers() == []


def test_missing_image_fails_at_once_naming_the_image_and_the_command(fault_farm):
    farm = fault_farm
    farm.login()
    started = time.monotonic()
    [brid] = farm.force("force-arch").values()
    result = farm.wait_for_build(brid, timeout=120)
    assert time.monotonic() - started < 60, "a missing image must not hang the build"
    assert result["results"] in (2, 4)
    text = _everything_said(farm, result)
    assert "rustfarm/aarch64-unknown-linux-gnu:0000missing0" in text
    assert "farm images build --target aarch64-unknown-linux-gnu" in text
    # No retry storm: one build for the request.
    assert len(farm.api("builds", buildrequestid=brid)["builds"]) == 1


def _everything_said(farm, build: dict) -> str:
    parts = [build["state_string"]]
    for step in farm.steps(build):
        parts.append(step["state_string"])
        for log in farm.api(f"steps/{step['stepid']}/logs")["logs"]:
            reply = farm.session.get(f"{farm.url}api/v2/logs/{log['logid']}/raw", timeout=30)
            parts.append(reply.text)
    return "\n".join(parts)


def test_killed_container_is_retried_on_a_fresh_one(fault_farm):
    farm = fault_farm
    farm.login()
    # A cold build of the crate with dependencies takes several seconds: time to kill it.
    remove_cache_volumes()
    [brid] = farm.force("force-deps").values()
    killed: list[str] = []

    def kill_during_cargo_build():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            builds = farm.api("builds", buildrequestid=brid)["builds"]
            if builds:
                steps = farm.steps(builds[0])
                if any(s["name"] == "cargo build" and s["started_at"] for s in steps):
                    for name in farm_containers():
                        subprocess.run(["docker", "kill", name], capture_output=True)
                        killed.append(name)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_during_cargo_build)
    killer.start()
    result = farm.wait_for_build(brid, timeout=600)
    killer.join()
    assert killed, "the container was never seen running cargo build"
    builds = farm.api("builds", buildrequestid=brid)["builds"]
    assert [b["results"] for b in builds][0] == 5, "the killed build ends RETRY"
    assert result["results"] == 0 and len(builds) == 2
    assert "Compiling regex" in farm.step_log(result, "cargo build")
    assert wait_until_no_containers(30) == []


def test_a_build_over_the_memory_limit_says_so_and_is_not_retried(fault_farm):
    farm = fault_farm
    farm.login()
    [brid] = farm.force("force-hog").values()
    result = farm.wait_for_build(brid, timeout=300)
    assert result["results"] == 2
    steps = {step["name"]: step for step in farm.steps(result)}
    message = "killed: exceeded the pool's memory limit of 256m"
    assert steps["cargo build"]["state_string"].startswith(message)
    assert message in _everything_said(farm, result)
    assert len(farm.api("builds", buildrequestid=brid)["builds"]) == 1


def test_after_the_master_is_killed_its_container_goes_at_the_next_start(fault_farm):
    farm = fault_farm
    farm.login()
    [brid] = farm.force("force-slow").values()
    deadline = time.monotonic() + 120
    while not farm_containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    [orphan] = farm_containers()
    orphan_id = container_id(orphan)
    master = int((farm.state / "master" / "twistd.pid").read_text())
    os.kill(master, signal.SIGKILL)
    time.sleep(1)
    assert container_id(orphan) == orphan_id, "the orphan outlives its master"
    log = farm.state / "master" / "twistd.log"
    logged_before = log.stat().st_size
    farm.up()
    deadline = time.monotonic() + 30
    while container_exists(orphan_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not container_exists(orphan_id)
    with log.open() as text:
        text.seek(logged_before)
        assert f"removing {orphan}, left from an earlier run of the master" in text.read()
    farm.session.cookies.clear()
    farm.login()
    result = farm.wait_for_build(brid, timeout=300)
    assert result["results"] == 0, "the interrupted build ran again"


def container_id(name: str) -> str:
    return subprocess.run(["docker", "inspect", "--format", "{{.Id}}", name],
                          capture_output=True, text=True).stdout.strip()


def container_exists(container: str) -> bool:
    return subprocess.run(["docker", "inspect", container], capture_output=True).returncode == 0


def test_without_a_docker_engine_farm_up_falls_back_to_local_workers(tmp_path):
    farm = RunningFarm(tmp_path, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, docker_host: "unix://{tmp_path}/no-docker.sock"}}
targets:
  x86_64-unknown-linux-gnu: {{pool: {POOL}, image: "rustfarm/x86_64-unknown-linux-gnu:x"}}
  {MIPSEL}: {{pool: {POOL}, image: "rustfarm/{MIPSEL}:x"}}
projects:
  hello: {{source: {EXAMPLE}}}
""")
    try:
        farm.up()
        out = farm.up_output
        assert f"no Docker engine answers at unix://{tmp_path}/no-docker.sock" in out
        assert "falling back to local workers" in out
        assert "x86_64-unknown-linux-gnu: builds on local workers instead" in out
        assert f"not built until a Docker engine answers: {MIPSEL}" in out
        names = [b["name"] for b in farm.api("builders")["builders"]]
        assert "hello:x86_64-unknown-linux-gnu" in names and f"hello:{MIPSEL}" not in names
        done = farm.farm("build", "hello", "--wait")
        assert "hello:x86_64-unknown-linux-gnu: success" in done.stdout
    finally:
        farm.down()


def test_farm_up_builds_pinned_images_the_engine_lacks(built_chain, tmp_path):
    wasm = "wasm32-unknown-unknown"
    image = built_chain.reference(wasm)
    subprocess.run(["docker", "image", "rm", image], check=True, capture_output=True)
    farm = RunningFarm(tmp_path, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, standby: 0}}
targets:
  {wasm}: {{pool: {POOL}, image: "{image}"}}
  {MIPSEL}: {{pool: {POOL}, image: "rustfarm/{MIPSEL}:0000missing0"}}
projects:
  hello: {{source: {EXAMPLE}}}
""")
    try:
        out = farm.up().up_output
        assert "2 pinned worker images are not on their pool's engine yet" in out
        assert f"{MIPSEL}: rustfarm/{MIPSEL}:0000missing0 is not what the recipes make now" in out
        assert "building 1 missing worker images" in out
        assert "every pinned worker image is on its pool's engine" in out
        inspected = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        assert inspected.returncode == 0
    finally:
        farm.down()


def test_farm_up_pulls_what_the_engine_lacks_from_the_pool_s_registry(built_chain, registry,
                                                                      tmp_path):
    """A pool with an image_registry (the way a remote engine gets its images): farm up
    pulls the pinned image there rather than building it."""
    wasm = "wasm32-unknown-unknown"
    image = built_chain.reference(wasm)
    remote = f"{registry.address}/{image}"
    subprocess.run(["docker", "tag", image, remote], check=True)
    subprocess.run(["docker", "push", "-q", remote], check=True, capture_output=True)
    subprocess.run(["docker", "image", "rm", remote, image], check=True, capture_output=True)
    farm = RunningFarm(tmp_path, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, standby: 0, image_registry: "{registry.address}"}}
targets:
  {wasm}: {{pool: {POOL}, image: "{image}"}}
projects:
  hello: {{source: {EXAMPLE}, targets: [{wasm}]}}
""")
    try:
        out = farm.up().up_output
        assert f"{wasm} with Rust 1.96: {image} (pool {POOL})" in out
        assert f"pulled {remote}" in out and "missing worker images" not in out, out
        inspected = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        assert inspected.returncode == 0
    finally:
        farm.down()
        subprocess.run(["docker", "image", "rm", remote], capture_output=True)
