"""A farm of 1,100 builders (100 projects x 11 targets, two local workers) loads, starts
and builds: a builder page's force button builds that builder only, a project's form
the targets chosen, and a pushed commit that project's builders only."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.farm import EXAMPLE, RunningFarm

from .conftest import HOST_TARGET, require_cargo

TARGETS = [HOST_TARGET, "i686-unknown-linux-gnu", "aarch64-unknown-linux-gnu",
           "mipsel-unknown-linux-gnu", "mips-unknown-linux-musl", "riscv64gc-unknown-linux-gnu",
           "powerpc64le-unknown-linux-gnu", "s390x-unknown-linux-gnu",
           "armv7-unknown-linux-gnueabihf", "x86_64-unknown-linux-musl", "wasm32-unknown-unknown"]
PROJECTS = 100
GIT_PROJECT = "p0099"

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=dev@example.invalid", "-c", "user.name=dev",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def big_farm(tmp_path_factory):
    require_cargo()
    root = tmp_path_factory.mktemp("big")
    plain = root / "hello"
    shutil.copytree(EXAMPLE, plain, ignore=shutil.ignore_patterns("target"))
    work = root / "work"
    shutil.copytree(plain, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-qm", "hello")
    git(root, "clone", "-q", "--bare", str(work), str(root / "hello.git"))
    git(work, "remote", "add", "origin", str(root / "hello.git"))
    projects = "".join(f"  p{i:04d}: {{source: {plain}, binaries: [hello], test: false}}\n"
                       for i in range(PROJECTS - 1))
    projects += (f"  {GIT_PROJECT}: {{source: file://{root / 'hello.git'}, poll_interval: 1,"
                 " binaries: [hello], test: false}\n")
    farm = RunningFarm(root / "farm", "schedule: {nightly: \"03:00\"}\n"
                       "workers: {local: {kind: local, count: 2}}\n"
                       "targets:\n" + "".join(f"  {t}: {{pool: local}}\n" for t in TARGETS)
                       + "projects:\n" + projects)
    try:
        yield farm.up(), work
    finally:
        farm.down()


def builder_ids(farm: RunningFarm) -> dict[str, int]:
    return {b["name"]: b["builderid"] for b in farm.api("builders")["builders"]}


def force_from_page(farm: RunningFarm, builderid: int) -> tuple[int, dict[str, int]]:
    """What the web UI sends when "Force build" is pressed on a builder's page."""
    [button] = [s for s in farm.api(f"builders/{builderid}/forceschedulers")["forceschedulers"]
                if s["button_name"] == "Force build"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "force",
            "params": {"builderid": str(builderid)}}
    reply = farm.session.post(f"{farm.url}api/v2/forceschedulers/{button['name']}", json=body,
                              timeout=60, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    bsid, brids = reply.json()["result"]
    return bsid, brids


def test_1100_builders_start_and_a_page_force_builds_that_builder_only(big_farm):
    farm, _ = big_farm
    ids = builder_ids(farm)
    assert len([name for name in ids if ":" in name]) == PROJECTS * len(TARGETS)
    # No worker serves more builders than Twisted PB lets it attach.
    workers = {w["name"]: w for w in farm.api("workers")["workers"]}
    assert {n for n in workers if not n.startswith("__")} == {"local-1", "local-2"}
    assert all(len(workers[n]["configured_on"]) <= 1000 and workers[n]["connected_to"]
               for n in ("local-1", "local-2"))
    # A builder page offers its project's force schedulers (its form, its button and its
    # reproduction check), not one per builder.
    builder = ids[f"p0042:{HOST_TARGET}"]
    page = farm.api(f"builders/{builder}/forceschedulers")["forceschedulers"]
    assert sorted(s["name"] for s in page) == ["force-p0042", "force-p0042-builder",
                                               "verify-p0042"]

    farm.login()
    bsid, brids = force_from_page(farm, builder)
    assert list(brids) == [str(builder)]
    assert [r["builderid"] for r in farm.api("buildrequests", buildsetid=bsid)["buildrequests"]] \
        == [builder]
    build = farm.wait_for_build(brids[str(builder)], timeout=600)
    assert build["results"] == 0, farm.step_log(build, "cargo build")
    assert build["builderid"] == builder


def test_another_projects_builder_cannot_be_forced_from_this_button(big_farm):
    farm, _ = big_farm
    farm.login()
    other = builder_ids(farm)[f"p0001:{HOST_TARGET}"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": {"builderid": str(other)}}
    reply = farm.session.post(f"{farm.url}api/v2/forceschedulers/force-p0042-builder",
                              json=body, timeout=60, headers={"Accept": "application/json"})
    assert reply.status_code == 400
    assert "is not one of project p0042's builders" in reply.text


def test_the_project_form_builds_the_chosen_targets(big_farm):
    farm, _ = big_farm
    farm.login()
    chosen = [HOST_TARGET, "i686-unknown-linux-gnu"]
    requests = farm.force("force-p0077", targets=chosen)
    assert sorted(requests) == sorted(f"p0077:{t}" for t in chosen)
    build = farm.wait_for_build(requests[f"p0077:{HOST_TARGET}"], timeout=600)
    assert build["results"] == 0


def test_a_pushed_commit_builds_that_projects_builders_only(big_farm):
    farm, work = big_farm
    ids = builder_ids(farm)
    ours = {ids[f"{GIT_PROJECT}:{t}"] for t in TARGETS}
    newest = farm.api("buildrequests", order="-buildrequestid", limit=1)["buildrequests"]
    last = newest[0]["buildrequestid"] if newest else 0
    time.sleep(3)          # the poller (every second) has recorded the branch head by now
    main = work / "src" / "main.rs"
    main.write_text(main.read_text() + "// a new commit\n")
    git(work, "commit", "-qam", "touch main")
    git(work, "push", "-q", "origin", "main")
    pushed = git(work, "rev-parse", "HEAD")

    deadline = time.monotonic() + 120
    new = []
    while time.monotonic() < deadline and len(new) < len(TARGETS):
        new = [r for r in farm.api("buildrequests", order="-buildrequestid",
                                   limit=100)["buildrequests"] if r["buildrequestid"] > last]
        time.sleep(0.5)
    time.sleep(2)          # any other project's requests would be there by now
    new = [r for r in farm.api("buildrequests", order="-buildrequestid",
                               limit=100)["buildrequests"] if r["buildrequestid"] > last]
    assert Counter(r["builderid"] for r in new) == Counter(ours)
    host = next(r for r in new if r["builderid"] == ids[f"{GIT_PROJECT}:{HOST_TARGET}"])
    build = farm.wait_for_build(host["buildrequestid"], timeout=600)
    assert build["results"] == 0
    props = farm.api(f"builds/{build['buildid']}", property="got_revision")["builds"][0]
    assert props["properties"]["got_revision"][0] == pushed
    changes = farm.api("changes")["changes"]
    assert any(c["revision"] == pushed and c["project"] == GIT_PROJECT for c in changes)
