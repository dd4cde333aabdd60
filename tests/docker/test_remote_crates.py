"""Crates from crates.io on a remote Docker engine, which cannot see the farm's crate
store: a second dockerd (tests/support/second_engine.py) the farm reaches over TLS at
a non-loopback address of this machine, its containers reaching the master over TCP.
The master sends the build's entries over the worker's connection into the builder's
cache volume there; a second build sends none; an entry altered there is replaced.
Real crates.io, real containers, the binary run under qemu."""

from __future__ import annotations

import pytest

from rustfarm.workers.docker_volumes import CACHE_DIR, CRATE_COPIES
from tests.support.binaries import run_downloaded
from tests.support.crates_io import require_crates_io
from tests.support.farm import RunningFarm
from tests.support.second_engine import GATEWAY, SecondEngine, machine_address

from .conftest import FIXTURES, TARGETS, pushed_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRIPLE = "mipsel-unknown-linux-musl"
POOL = "far"
PROJECT = "deps-demo"


@pytest.fixture(scope="module")
def pushed(registry) -> str:
    return pushed_image(registry, TRIPLE)


@pytest.fixture(scope="module")
def remote_farm(pushed, registry, tmp_path_factory):
    require_crates_io()
    engine = SecondEngine(reaches=(registry.port,), address=machine_address())
    farm = RunningFarm(tmp_path_factory.mktemp("remote-crates"), f"""\
schedule: {{nightly: false}}
workers:
  {POOL}:
    kind: docker
    count: 1
    memory: 2g
    standby: 0
    image_registry: {registry.address}
    docker_hosts:
      - {{url: "{engine.url}", tls: {engine.client_tls}}}
targets:
  {TRIPLE}: {{pool: {POOL}, image: "{pushed}"}}
projects:
  {PROJECT}: {{source: {FIXTURES / PROJECT}, test: false}}
""", master_address=GATEWAY)
    engine.serves = (farm.worker_port,)
    engine.start()
    # The image there already (as a build would pull it), so farm up builds nothing.
    pulled = engine.docker("pull", f"{registry.address}/{pushed}", timeout=600)
    assert pulled.returncode == 0, pulled.stderr
    engine.docker("tag", f"{registry.address}/{pushed}", pushed)
    try:
        yield farm.up(), engine
    finally:
        farm.down()
        engine.remove()


def build(farm) -> dict:
    farm.login()
    [brid] = farm.force(f"force-{PROJECT}", targets=[TRIPLE]).values()
    result = farm.wait_for_build(brid, timeout=900)
    assert result["results"] == 0, (farm.step_log(result, "dependencies") or "")[-3000:] + (
        farm.step_log(result, "cargo build") or "")[-3000:]
    result["props"] = farm.api(f"builds/{result['buildid']}", property="*")[
        "builds"][0]["properties"]
    return result


def dependencies(result: dict) -> dict:
    return result["props"]["dependencies"][0]


def summary(farm, result: dict) -> str:
    return {s["name"]: s for s in farm.steps(result)}["dependencies"]["state_string"]


def test_crates_reach_a_remote_engine_once_and_an_altered_copy_is_replaced(remote_farm,
                                                                            pushed, tmp_path):
    farm, engine = remote_farm
    first = build(farm)
    assert first["props"]["docker_engine"][0] == engine.url
    assert "crate_store" not in first["props"]        # the engine does not mount the store
    crates = dependencies(first)["crates"]
    assert crates >= 8 and dependencies(first)["sent"] == crates
    assert summary(farm, first).startswith(f"{crates} crates, {crates} downloaded, "
                                           f"{crates} sent ("), summary(farm, first)
    [archive] = [u for u in farm.artifact_urls(first) if u.endswith(".tar.gz")]
    output = run_downloaded(archive, tmp_path / "first", PROJECT, TARGETS[TRIPLE])
    assert output.startswith("deps-demo on mips: mipsel-unknown-linux-gnu"), output

    # The same crates again: nothing downloaded, nothing sent.
    second = build(farm)
    assert dependencies(second) | {"seconds": 0} == {
        "crates": crates, "downloaded": 0, "sent": 0, "altered_on_worker": 0,
        "resolved_lock": False, "seconds": 0}
    assert summary(farm, second).startswith(f"{crates} crates, 0 downloaded, 0 sent (")

    # A file of one copy altered in the builder's cache volume on that engine: the next
    # build finds it, removes it, is sent that entry alone, and builds.
    [volume] = [v for v in engine.docker("volume", "ls", "-q").stdout.split()
                if PROJECT in v]
    copies = f"{CACHE_DIR}/{CRATE_COPIES}/registry"
    altered = engine.docker(
        "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh",
        "-v", f"{volume}:{CACHE_DIR}", pushed,
        "-c", f"f=$(ls -d {copies}/regex-1*)/src/lib.rs && echo '// altered' >> $f && echo $f")
    assert altered.returncode == 0 and altered.stdout.strip(), altered
    third = build(farm)
    assert dependencies(third)["altered_on_worker"] == 1
    assert dependencies(third)["sent"] == 1
    log = farm.step_log(third, "dependencies")
    assert "altered on this worker, removed: registry/regex-1" in log, log[-2000:]
    [archive] = [u for u in farm.artifact_urls(third) if u.endswith(".tar.gz")]
    assert run_downloaded(archive, tmp_path / "third", PROJECT, TARGETS[TRIPLE]) == output
