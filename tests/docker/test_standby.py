"""Standby containers: after a build, a fresh container waits for its builder's next
build (workers/standby.py), in a pool of one worker, so that every container seen
belongs to it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from rustfarm.names import builder_name
from tests.support.binaries import check_artifact
from tests.support.crates import renamed_copy
from tests.support.farm import RunningFarm, wait_until

from .conftest import FIXTURES, TARGETS, remove_cache_volumes, up_for_the_module
from .test_container_builds import fetch_binary, run_in_image

POOL = "sb"
MIPSEL = "mipsel-unknown-linux-gnu"
STANDBY = 20
ARCH, OTHER = builder_name("arch", MIPSEL), builder_name("other", MIPSEL)


@pytest.fixture(scope="module")
def standby_farm(built_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("standby")
    other = renamed_copy("hello-arch", root, "other")
    farm = RunningFarm(root, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, standby: {STANDBY}}}
targets:
  {MIPSEL}: {{pool: {POOL}, image: "{built_chain.reference(MIPSEL)}"}}
projects:
  arch: {{source: {FIXTURES / 'hello-arch'}, binaries: [hello-arch], test: false}}
  other: {{source: {other}, binaries: [other], test: false}}
""")
    farm.config.write_text(farm.config.read_text().replace("name: test", "name: standby"))
    farm.image = built_chain.reference(MIPSEL)
    # Stopping the farm stops the container standing by.
    yield from up_for_the_module(farm, POOL, cleanup=lambda: remove_cache_volumes("standby"))


def containers() -> list[dict]:
    """The pool's containers, running or not: id, state and creation time."""
    listed = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter",
                             f"name=buildbot-{POOL}-"], capture_output=True, text=True)
    ids = listed.stdout.split()
    if not ids:
        return []
    inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True)
    return [{"id": c["Id"], "running": c["State"]["Running"], "created": c["Created"]}
            for c in json.loads(inspected.stdout or "[]")]


def connected(farm) -> bool:
    [worker] = farm.api("workers", name=f"{POOL}-1")["workers"]
    return bool(worker["connected_to"])


def standby_container(farm, timeout: float = 60) -> str:
    """The id of the container that waits, connected, with no build."""
    wait_until(lambda: connected(farm) and len(containers()) == 1, timeout,
               "a standby container connected")
    [found] = containers()
    return found["id"]


def master_log(farm) -> str:
    return (farm.state / "master" / "twistd.log").read_text()


def build(farm, project: str) -> dict:
    farm.login()
    [brid] = farm.force(f"force-{project}").values()
    result = farm.wait_for_build(brid, timeout=600)
    assert result["results"] == 0, farm.step_log(result, "cargo build")[-3000:]
    return result


def test_the_next_build_runs_in_a_fresh_container_that_waited_for_it(standby_farm, tmp_path):
    farm = standby_farm
    build(farm, "arch")
    first = standby_container(farm)
    assert f"starting a standby container for {ARCH}'s next build" in master_log(farm)

    result = build(farm, "arch")
    assert f"build of {ARCH} takes the standby container" in master_log(farm)
    # The standby ran this build and went with it; another now waits in its place,
    # a new container, not the one that built.
    second = standby_container(farm)
    assert second != first
    assert first not in [c["id"] for c in containers()]
    binary = fetch_binary(farm, result, "hello-arch", tmp_path)
    header = check_artifact(binary, **TARGETS[MIPSEL].binary.__dict__)
    assert run_in_image(farm.image, tmp_path, binary.name, [TARGETS[MIPSEL].qemu]) \
        == f"hello from {TARGETS[MIPSEL].arch}, {header.bits}-bit {header.endian}-endian"


def test_another_builders_build_replaces_the_standby(standby_farm, tmp_path):
    farm = standby_farm
    build(farm, "arch")
    waiting = standby_container(farm)
    result = build(farm, "other")
    assert (f"the standby container waits for {ARCH}; replacing it for {OTHER}'s build"
            in master_log(farm))
    assert waiting not in [c["id"] for c in containers()]
    check_artifact(fetch_binary(farm, result, "other", tmp_path),
                   **TARGETS[MIPSEL].binary.__dict__)
    standby_container(farm)
    assert f"starting a standby container for {OTHER}'s next build" in master_log(farm)


def test_a_standby_no_build_takes_is_stopped_after_the_pools_standby_time(standby_farm):
    farm = standby_farm
    build(farm, "arch")
    waiting = standby_container(farm)
    started = time.monotonic()
    wait_until(lambda: not containers(), STANDBY + 60, "the unused standby container gone")
    assert time.monotonic() - started >= STANDBY / 2, "stopped long before its time"
    assert waiting not in [c["id"] for c in containers()]
    assert f"no build of {ARCH} came within {STANDBY} s" in master_log(farm)
    assert not connected(farm)

