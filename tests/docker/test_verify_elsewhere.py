"""`farm verify-build` rebuilds a release on another worker than the one that built it:
in a pool of two, the rebuild runs on the other, even though the release's own worker
has a standby container waiting for that builder's next build; a target whose pool has
one worker is rebuilt there, and the outcome says it was the same worker."""

from __future__ import annotations


import pytest
import requests

from tests.support.crates import write_crate
from tests.support.farm import RunningFarm, wait_until

from .conftest import up_for_the_module
from .test_real_projects import build

pytestmark = pytest.mark.docker

TWO = "ve"          # a pool of two workers
ONE = "vo"          # a pool of one
MIPS_MUSL = "mips-unknown-linux-musl"
AARCH64_GNU = "aarch64-unknown-linux-gnu"


@pytest.fixture(scope="module")
def two_pools(built_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("elsewhere")
    write_crate(root / "hello", "hello", 'fn main() {\n    println!("hello");\n}\n')
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
workers:
  # A release's worker keeps a standby container for its builder: a rebuild left to the
  # pool's own choice would take it.
  {TWO}: {{kind: docker, count: 2, cpus: 2, memory: 2g, standby: 600}}
  {ONE}: {{kind: docker, count: 1, cpus: 2, memory: 2g, standby: 0}}
targets:
  {MIPS_MUSL}: {{pool: {TWO}, image: [{built_chain.reference(MIPS_MUSL)}]}}
  {AARCH64_GNU}: {{pool: {ONE}, image: [{built_chain.reference(AARCH64_GNU)}]}}
projects:
  hello:
    source: {root / 'hello'}
    targets: [{MIPS_MUSL}, {AARCH64_GNU}]
    test: false
""")
    yield from up_for_the_module(farm, TWO, ONE)


def worker_name(farm, build: dict) -> str:
    """The worker a build ran on, as Buildbot's REST API records it."""
    [worker] = farm.api(f"workers/{build['workerid']}")["workers"]
    return worker["name"]


def latest_build(farm, builder: str) -> dict:
    [found] = farm.api("builders", name=builder)["builders"]
    return farm.api(f"builders/{found['builderid']}/builds", order="-number",
                    limit=1)["builds"][0]


def standby_waits(farm, worker: str) -> bool:
    """The worker is connected with no build: its standby container waits."""
    [found] = farm.api("workers", name=worker)["workers"]
    return bool(found["connected_to"]) and not farm.api("builds", complete="false")["builds"]


def test_a_rebuild_runs_on_another_worker_than_the_release_s(two_pools):
    farm = two_pools
    release = build(farm, "hello", MIPS_MUSL, AARCH64_GNU)
    for triple, result in release.items():
        assert result["results"] == 0, farm.step_log(result, "cargo build")[-3000:]
    built_on = {triple: worker_name(farm, result) for triple, result in release.items()}
    assert built_on[AARCH64_GNU] == f"{ONE}-1"
    wait_until(lambda: standby_waits(farm, built_on[MIPS_MUSL]), 120,
               f"{built_on[MIPS_MUSL]}'s standby container connected")

    label = farm.api(f"builds/{release[MIPS_MUSL]['buildid']}", property="revision_label")[
        "builds"][0]["properties"]["revision_label"][0]
    done = farm.farm("verify-build", "hello", label, timeout=1200)
    assert f"hello {label}: every target reproduced" in done.stdout, done.stdout

    rebuilt = {triple: latest_build(farm, f"hello:{triple}") for triple in release}
    rebuilt_on = {triple: worker_name(farm, b) for triple, b in rebuilt.items()}
    for triple, result in rebuilt.items():
        assert result["buildid"] != release[triple]["buildid"] and result["results"] == 0
    # Two workers: the other one, as Buildbot's own record of the builds says.
    assert rebuilt[MIPS_MUSL]["workerid"] != release[MIPS_MUSL]["workerid"]
    assert rebuilt_on[MIPS_MUSL] != built_on[MIPS_MUSL]
    assert f"hello:{MIPS_MUSL}: rebuilt on {rebuilt_on[MIPS_MUSL]}, the release on " \
        f"{built_on[MIPS_MUSL]}" in done.stdout, done.stdout
    # One worker: the same, said plainly.
    assert rebuilt_on[AARCH64_GNU] == built_on[AARCH64_GNU]
    assert f"hello:{AARCH64_GNU}: rebuilt on the same worker as the release, " \
        f"{ONE}-1" in done.stdout, done.stdout

    page = requests.get(f"{farm.url}plugins/artifacts/hello/{label}/", timeout=30).text
    assert page.count(">reproduced</a>") == 2, page
    assert f"rebuilt on {rebuilt_on[MIPS_MUSL]}, the release on {built_on[MIPS_MUSL]}" in page
    assert f"rebuilt on the same worker as the release, {ONE}-1" in page
