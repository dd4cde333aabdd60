"""Full volumes, in containers of the real worker image: with no room in the shared
compile cache a build goes on without it (and leaves no half-stored crate there); with
no room in a project's cache volume its build fails saying so, and once there is room
again the project builds. The small volumes are tmpfs volumes of the engine's local
driver, made under the names the farm gives its volumes."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from buildbot.process.results import SUCCESS

from rustfarm.workers.docker_volumes import cache_volume_name, compile_cache_volume_name
from tests.support.binaries import run_downloaded
from tests.support.farm import RunningFarm

from .conftest import FIXTURES, TARGETS, up_for_the_module, wait_until_no_containers

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TARGET = "mipsel-unknown-linux-musl"     # static: it runs under the host's qemu-mipsel
FARM = "fullvolumes"
POOL = "fv"


def tmpfs_volume(name: str, size: str) -> None:
    """``name`` as a tmpfs of ``size``, owned by the images' rustbuild user."""
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=True)
    subprocess.run(["docker", "volume", "create", "--driver", "local", "--opt", "type=tmpfs",
                    "--opt", "device=tmpfs", "--opt", f"o=size={size},uid=1000,gid=1000", name],
                   capture_output=True, check=True)


def remove_volume(name: str) -> None:
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=True)


@pytest.fixture(scope="module")
def full_farm(built_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    deps = root / "deps-demo"
    shutil.copytree(FIXTURES / "deps-demo", deps, ignore=shutil.ignore_patterns("target"))
    image = built_chain.reference(TARGET)
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, memory: 2g, standby: 0}}
targets:
  {TARGET}: {{pool: {POOL}, image: "{image}"}}
projects:
  deps: {{source: {deps}, binaries: [deps-demo], test: false}}
  hello: {{source: {FIXTURES / 'hello-arch'}, binaries: [hello-arch], test: false}}
""")
    farm.config.write_text(farm.config.read_text().replace("name: test\n", f"name: {FARM}\n"))
    farm.compile_cache = compile_cache_volume_name(FARM, image, TARGET)
    farm.volumes = {name: cache_volume_name(FARM, name, TARGET, image) for name in ("deps", "hello")}
    farm.image = image
    for volume in (farm.compile_cache, *farm.volumes.values()):
        remove_volume(volume)
    # Room for a few crates' entries of the compile cache at most: regex alone is more.
    tmpfs_volume(farm.compile_cache, "64k")
    tmpfs_volume(farm.volumes["hello"], "256k")

    def remove_volumes():
        for volume in (farm.compile_cache, *farm.volumes.values()):
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)

    yield from up_for_the_module(farm, POOL, cleanup=remove_volumes)


def build(farm: RunningFarm, project: str) -> dict:
    [brid] = farm.force(f"force-{project}", targets=[TARGET]).values()
    return farm.wait_for_build(brid, timeout=600)


def listing(farm: RunningFarm, volume: str, *find: str) -> list[str]:
    found = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/v:ro",
         "--entrypoint", "find", farm.image, "/v", *find],
        capture_output=True, text=True, timeout=120, check=True)
    return found.stdout.split()


def test_a_full_compile_cache_leaves_builds_going_on_without_it(full_farm, tmp_path):
    farm = full_farm
    farm.login()
    done = build(farm, "deps")
    assert done["results"] == SUCCESS, farm.all_logs(done)[-3000:]
    assert "Compiling regex" in farm.step_log(done, "cargo build")
    [archive] = [u for u in farm.artifact_urls(done) if u.endswith(".tar.gz")]
    assert run_downloaded(archive, tmp_path, "deps-demo", TARGETS[TARGET]).startswith(
        "deps-demo on mips: ")
    # What could not be stored was given up whole: no half-written entry is left.
    assert listing(farm, farm.compile_cache, "-path", "*/tmp/*") == []


def test_a_full_cache_volume_fails_the_build_saying_so_until_there_is_room(full_farm, tmp_path):
    farm = full_farm
    farm.login()
    failed = build(farm, "hello")
    assert failed["results"] != SUCCESS
    [cargo] = [s for s in farm.steps(failed) if s["name"] == "cargo build"]
    assert "build failed: no space left on the build's volume" in cargo["state_string"], \
        farm.step_log(failed, "cargo build")[-3000:]
    # Room again: the farm makes the project's volume anew as the next build starts.
    assert not wait_until_no_containers(pool=POOL)
    remove_volume(farm.volumes["hello"])
    done = build(farm, "hello")
    assert done["results"] == SUCCESS, farm.all_logs(done)[-3000:]
    [archive] = [u for u in farm.artifact_urls(done) if u.endswith(".tar.gz")]
    assert run_downloaded(archive, tmp_path, "hello-arch", TARGETS[TARGET]).strip()
