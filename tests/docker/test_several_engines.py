"""One docker pool over two engines: the system's and a second dockerd this test
starts (TLS on loopback, its own data root). The second engine gets its image from
the farm's registry, builds run on both, a stopped engine is skipped and used again
once it answers, and no container is left on either."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rustfarm.farmfile.pool_kinds import LOCAL_DOCKER_ENGINE
from tests.support.binaries import run_downloaded
from tests.support.containers import pool_containers
from tests.support.docker_engine import require_docker
from tests.support.farm import EXAMPLE, RunningFarm, wait_until
from tests.support.second_engine import SecondEngine

from .conftest import TARGETS, pushed_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRIPLE = "mipsel-unknown-linux-musl"
POOL = "two"
PROJECTS = ("hello", "hello-again")     # two builders: two builds at once, one per engine


@pytest.fixture(scope="module")
def second_engine(registry):
    require_docker()
    engine = SecondEngine(reaches=(registry.port,)).start()
    try:
        yield engine
    finally:
        engine.remove()


@pytest.fixture(scope="module")
def pushed(registry) -> str:
    """The target's current image in the farm's registry."""
    return pushed_image(registry, TRIPLE)


@pytest.fixture(scope="module")
def two_engine_farm(pushed, registry, second_engine, tmp_path_factory):
    farm = RunningFarm(tmp_path_factory.mktemp("two-engines"), f"""\
schedule: {{nightly: false}}
workers:
  {POOL}:
    kind: docker
    count: 2
    memory: 2g
    image_registry: {registry.address}
    warm_engine_wait: 0       # where builds can go; waiting for a warm engine: unit tests
    standby: 0                # the containers each build had, counted after it
    docker_hosts:
      - {LOCAL_DOCKER_ENGINE}
      - {{url: "{second_engine.url}", tls: {second_engine.client_tls}}}
targets:
  {TRIPLE}: {{pool: {POOL}, image: "{pushed}"}}
projects:
""" + "".join(f"  {name}: {{source: {EXAMPLE}, binaries: [hello], test: false}}\n"
          for name in PROJECTS))
    try:
        yield farm.up()
    finally:
        farm.down()


def system_containers() -> list[str]:
    return pool_containers(POOL)


def build_both(farm) -> dict[str, dict]:
    """Force both projects' builds at once; each build with its properties."""
    farm.login()
    requests_ = {}
    for project in PROJECTS:
        [brid] = farm.force(f"force-{project}", targets=[TRIPLE]).values()
        requests_[project] = brid
    done = {}
    for project, brid in requests_.items():
        build = farm.wait_for_build(brid, timeout=900)
        build["props"] = farm.api(f"builds/{build['buildid']}", property="*")[
            "builds"][0]["properties"]
        done[project] = build
    return done


def engine_of(build: dict) -> str:
    return build["props"]["docker_engine"][0]


def master_log(farm) -> str:
    return (farm.state / "master" / "twistd.log").read_text(errors="replace")


def scheduling_log(farm) -> str:
    """The master's lines on which worker took which build, and on the engines."""
    return "\n".join(line for line in master_log(farm).splitlines()
                     if any(word in line for word in ("starting build", "quarantine",
                                                      "Docker engine", "added buildset")))


def wait_for_log(farm, text: str, timeout: float = 60) -> None:
    wait_until(lambda: text in master_log(farm), timeout, f"the master's log never said: {text}")


def check_binary(farm, build: dict, dest: Path) -> None:
    [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    assert "mips" in run_downloaded(archive, dest, "hello", TARGETS[TRIPLE])


def test_a_pool_builds_on_both_engines_and_skips_one_that_stops(
        two_engine_farm, second_engine, pushed, registry, tmp_path):
    farm = two_engine_farm
    # farm up says what the second engine lacks and where it will come from.
    assert (f"pool {POOL}: the engine at {second_engine.url} lacks 1 of its images; a build "
            f"there pulls its image from {registry.address} first") in farm.up_output
    assert second_engine.docker("image", "inspect", pushed).returncode != 0
    since = time.time()

    # 1. Both engines answer: the two builds run at once, one on each engine.
    builds = build_both(farm)
    for project, build in builds.items():
        assert build["results"] == 0, farm.step_log(build, "cargo build")[-3000:]
        check_binary(farm, build, tmp_path / project)
    assert sorted(engine_of(b) for b in builds.values()) == sorted(
        [LOCAL_DOCKER_ENGINE, second_engine.url])
    # The second engine pulled the image from the farm's registry and ran a container.
    assert second_engine.docker("image", "inspect", pushed).returncode == 0
    assert f"pulling it from {registry.address}" in master_log(farm)
    started = second_engine.docker("events", "--since", str(int(since)), "--until",
                                   str(int(time.time()) + 1), "--filter", "type=container",
                                   "--filter", "event=start", "--format",
                                   "{{.Actor.Attributes.name}}").stdout.split()
    assert any(name.startswith(f"buildbot-{POOL}-2-") for name in started), started

    # 2. The second engine stops: builds still succeed, all on the first engine.
    second_engine.stop()
    builds = build_both(farm)
    for project, build in builds.items():
        assert build["results"] == 0, build
        assert engine_of(build) == LOCAL_DOCKER_ENGINE
    # A build that started once the farm knew names the engine it skipped (the other may
    # have started before).
    assert any(b["props"].get("docker_engines_skipped", [""])[0].startswith(
        f"{second_engine.url} (does not answer since ") for b in builds.values()), builds
    wait_for_log(farm, f"Docker engine {second_engine.url} of pool {POOL} does not answer")
    assert f"its workers {POOL}-2 take no builds until it answers again" in master_log(farm)
    status = farm.farm("status").stdout
    assert f"engine {second_engine.url} (pool {POOL}, 1 worker(s)): does not answer: " in status
    assert f"engine {LOCAL_DOCKER_ENGINE} (pool {POOL}, 1 worker(s)): answers; " in status

    # 3. It answers again: the farm uses it again.
    second_engine.start()
    wait_for_log(farm, f"Docker engine {second_engine.url} of pool {POOL} answers again")
    # Both builders last built on the first engine: one takes its worker, the other the
    # second engine's, free again (also the worker whose container never started when
    # the engine was down: it takes any builder's build again).
    builds = build_both(farm)
    assert all(b["results"] == 0 for b in builds.values()), builds
    assert sorted(engine_of(b) for b in builds.values()) == sorted(
        [LOCAL_DOCKER_ENGINE, second_engine.url]), scheduling_log(farm)
    assert (f"engine {second_engine.url} (pool {POOL}, 1 worker(s)): answers; "
            in farm.farm("status").stdout)

    # 4. After farm down no container is left on either engine.
    farm.down()
    deadline = time.monotonic() + 60
    while (system_containers() or second_engine.containers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert system_containers() == [] and second_engine.containers() == []
