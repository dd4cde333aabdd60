"""Reproducible releases: a project with crates from crates.io, built for MIPS musl and
aarch64 glibc with debug info kept, with the shared compile cache and a standby
container, is rebuilt by `farm verify-build` without the cache in a fresh volume, and
every binary is the same, byte for byte; a build script that writes the time is
reported as not reproduced, naming the binary."""

from __future__ import annotations

import subprocess

import pytest
import requests

from rustfarm.workers.docker_volumes import reproduction_volume_name
from tests.support.crates import renamed_copy, write_crate
from tests.support.crates_io import require_crates_io
from tests.support.farm import RunningFarm, wait_until

from .conftest import remove_cache_volumes, targets_yaml, up_for_the_module
from .test_real_projects import build

pytestmark = pytest.mark.docker

POOL = "rb"
FARM = "test"
MIPS_MUSL = "mips-unknown-linux-musl"
AARCH64_GNU = "aarch64-unknown-linux-gnu"
TIMEY_BUILD_RS = """use std::time::{SystemTime, UNIX_EPOCH};
fn main() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    println!("cargo:rustc-env=BUILT_AT={now}");
}
"""


@pytest.fixture(scope="module")
def repro_farm(built_chain, tmp_path_factory):
    require_crates_io()
    # Cold: no project volume or compile cache left by an earlier run.
    remove_cache_volumes(FARM)
    root = tmp_path_factory.mktemp("reprofarm")
    renamed_copy("cli-deps", root, "tool")
    renamed_copy("cli-deps", root, "warm")      # the same crates, to fill the compile cache
    timey = write_crate(root / "timey", "timey",
                        'fn main() {\n    println!("built at {}", env!("BUILT_AT"));\n}\n')
    (timey / "build.rs").write_text(TIMEY_BUILD_RS)
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
workers:
  # One worker: which builder its standby container waits for is then certain.
  {POOL}: {{kind: docker, count: 1, cpus: 2, memory: 3g, standby: 1}}
targets:
{targets_yaml(built_chain, POOL)}
projects:
  tool:
    source: {root / 'tool'}
    targets: [{MIPS_MUSL}, {AARCH64_GNU}]
    test: false
    strip: false                    # debug info too: every path in it must be remapped
  warm:
    source: {root / 'warm'}
    targets: [{MIPS_MUSL}, {AARCH64_GNU}]
    test: false
    strip: false
  timey:
    source: {timey}
    targets: [{MIPS_MUSL}]
    test: false
""")
    yield from up_for_the_module(farm, POOL)


def standby_connected(farm) -> bool:
    """The pool's one worker waits, connected, in a container with no build."""
    [worker] = farm.api("workers", name=f"{POOL}-1")["workers"]
    return bool(worker["connected_to"]) and not any(
        b for b in farm.api("builds", complete="false")["builds"])


def prop(farm, build: dict, name: str):
    found = farm.api(f"builds/{build['buildid']}", property=name)["builds"][0]["properties"]
    return found.get(name, [None])[0]


def builds_of(farm, builder: str) -> list[dict]:
    [found] = farm.api("builders", name=builder)["builders"]
    return farm.api(f"builders/{found['builderid']}/builds", order="number")["builds"]


def test_a_release_rebuilt_without_the_cache_in_its_own_volume_is_the_same(repro_farm):
    farm = repro_farm
    build(farm, "warm", MIPS_MUSL, AARCH64_GNU)
    first, release = {}, {}
    for triple in (MIPS_MUSL, AARCH64_GNU):
        # The release's first build takes its crates from the compile cache "warm"
        # filled; its second, of the same revision, runs in the standby container the
        # first left.
        [first[triple]] = build(farm, "tool", triple).values()
        wait_until(lambda: standby_connected(farm), 90, "a standby container connected")
        [release[triple]] = build(farm, "tool", triple).values()
        log = (farm.state / "master" / "twistd.log").read_text()
        assert f"build of tool:{triple} takes the standby container" in log
    for triple, result in release.items():
        assert first[triple]["results"] == 0, farm.step_log(first[triple], "cargo build")[-3000:]
        assert prop(farm, first[triple], "compile_cache")["hits"] > 0, triple
        assert result["results"] == 0, farm.step_log(result, "cargo build")[-3000:]
        assert prop(farm, result, "archive_sha256") == prop(farm, first[triple],
                                                            "archive_sha256")
    label = prop(farm, release[MIPS_MUSL], "revision_label")
    done = farm.farm("verify-build", "tool", label, timeout=2400)
    assert "tool " + label + ": every target reproduced" in done.stdout, done.stdout
    # The pool's one worker built the release: the rebuild runs there too, and says so.
    assert done.stdout.count(f"rebuilt on the same worker as the release, {POOL}-1") == 2
    for triple, result in release.items():
        [rebuilt] = builds_of(farm, f"tool:{triple}")[-1:]
        assert rebuilt["buildid"] != result["buildid"] and rebuilt["results"] == 0
        assert prop(farm, rebuilt, "archive_sha256") == prop(farm, result, "archive_sha256")
        assert prop(farm, rebuilt, "binary_digests") == prop(farm, result, "binary_digests")
        steps = {s["name"]: s for s in farm.steps(rebuilt)}
        assert steps["compile cache"]["results"] == 3          # skipped: no cache
        assert steps["compare with the release"]["state_string"] == "reproduced"
        assert prop(farm, rebuilt, "cache_volume") == reproduction_volume_name(FARM, "tool",
                                                                                  triple)
    # The rebuilds' volumes went with their containers.
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert not [v for v in volumes if "verify" in v and v.startswith("rustfarm-upload-")]
    page = requests.get(f"{farm.url}plugins/artifacts/tool/{label}/", timeout=30).text
    assert page.count(">reproduced</a>") == 2
    assert page.count(f"rebuilt on the same worker as the release, {POOL}-1") == 2


def test_a_build_that_writes_the_time_is_not_reproduced_and_the_binary_is_named(repro_farm):
    farm = repro_farm
    [result] = build(farm, "timey", MIPS_MUSL).values()
    assert result["results"] == 0, farm.step_log(result, "cargo build")[-3000:]
    label = prop(farm, result, "revision_label")
    done = farm.farm("verify-build", "timey", label, check=False, timeout=1200)
    assert done.returncode == 1
    assert "NOT reproduced: timey differs" in done.stdout, done.stdout
    page = requests.get(f"{farm.url}plugins/artifacts/timey/{label}/", timeout=30).text
    assert "not reproduced: timey" in page
