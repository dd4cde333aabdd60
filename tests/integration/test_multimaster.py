"""Two masters in Buildbot's multi-master mode (the PostgreSQL server and the crossbar
router `farm up` runs, real masters and a real local worker): a build forced through
one master runs on the worker attached to the other, its artifact is downloadable from
both, and a pushed commit gives one build per builder, not one per master, and one
commit status per state, one check run made and updated, and one chat post (a
recording stand-in for the forge)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests

from tests.support.farm import EXAMPLE, RunningFarm, two_masters_yaml, wait_until
from tests.support.forge_api import github_app_key

from .conftest import HOST_TARGET, reachable_directory, require_cargo

pytestmark = pytest.mark.slow


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()



@pytest.fixture(scope="module")
def project_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("git")
    bare = root / "hello.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = root / "work"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(work)], check=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "dev@example.invalid")
    git(work, "config", "user.name", "dev")
    git(work, "add", ".")
    git(work, "commit", "-qm", "hello")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, work


CHAT = "/hooks/chat"


@pytest.fixture(scope="module")
def two_masters(postgresql_installed, router_installed, project_repo, forge_api):
    require_cargo()
    bare, _ = project_repo
    directory = reachable_directory("rustfarm-multi-")
    farm = RunningFarm(directory, "")
    # The one local worker attaches to the first master; builds are forced via the second.
    farm.config.write_text(farm.config.read_text() + two_masters_yaml(farm) + f"""\
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello: {{source: {EXAMPLE}, test: false}}
  pushed:
    source: "file://{bare}"
    branches: [main]
    poll_interval: 1
    test: false
    forge:
      kind: github
      repository: acme/pushed
      api_url: "{forge_api.url}"
      checks: {{app_id: 4321, installation_id: 99}}
    notify: {{webhook: "{forge_api.url}{CHAT}"}}
""")
    farm.farm("forge-token", "pushed", input="pushed-forge-token\n")
    farm.farm("github-app-key", "pushed", input=github_app_key()[0])
    try:
        yield farm.up()
    finally:
        farm.down()
        shutil.rmtree(directory, ignore_errors=True)


def masters_by_id(farm: RunningFarm) -> dict[int, str]:
    return {m["masterid"]: m["name"] for m in farm.api("masters")["masters"]}


def test_a_build_forced_via_one_master_runs_on_the_other_s_worker(two_masters):
    farm = two_masters
    masters = masters_by_id(farm)
    assert len([m for m in farm.api("masters")["masters"] if m["active"]]) == 2
    [worker] = [w for w in farm.api("workers")["workers"] if w["name"] == "local-1"]
    [attached] = [masters[c["masterid"]] for c in worker["connected_to"]]
    assert attached.endswith("masters/first")

    second = requests.Session()
    second.get(f"{farm.second_url}auth/login", auth=("admin", farm.password()),
               timeout=30).raise_for_status()
    builder = {b["name"]: b["builderid"] for b in farm.api("builders")["builders"]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "force",
            "params": {"builderid": str(builder[f"hello:{HOST_TARGET}"])}}
    reply = second.post(f"{farm.second_url}api/v2/forceschedulers/force-hello-builder",
                        json=body, timeout=30, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    [brid] = reply.json()["result"][1].values()
    build = farm.wait_for_build(brid)
    assert build["results"] == 0, farm.step_log(build, "cargo build")
    assert masters[build["masterid"]].endswith("masters/first")

    # Both masters show the build, and serve its artifact.
    seen = second.get(f"{farm.second_url}api/v2/builds/{build['buildid']}", timeout=30,
                      headers={"Accept": "application/json"}).json()["builds"]
    assert seen[0]["results"] == 0
    urls = [u for u in farm.artifact_urls(build) if "/plugins/artifacts/" in u]
    assert urls, farm.steps(build)
    path = urls[0].split("/plugins/artifacts/", 1)[1]
    downloads = [requests.get(f"{base}plugins/artifacts/{path}", timeout=30)
                 for base in (farm.url, farm.second_url)]
    assert [d.status_code for d in downloads] == [200, 200]
    assert downloads[0].content == downloads[1].content and downloads[0].content


def test_a_pushed_commit_builds_once_not_once_per_master(two_masters, project_repo,
                                                        forge_api):
    farm = two_masters
    _, work = project_repo
    builder = f"pushed:{HOST_TARGET}"
    builderid = {b["name"]: b["builderid"] for b in farm.api("builders")["builders"]}[builder]

    def builds() -> list[dict]:
        return farm.api("builds", builderid=builderid)["builds"]

    before = len(builds())
    (work / "NOTES").write_text("a change\n")
    git(work, "add", "NOTES")
    git(work, "commit", "-qm", "a change")
    git(work, "push", "-q", "origin", "main")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (
            len(builds()) > before and all(b["complete"] for b in builds())):
        time.sleep(1)
    # Both masters poll the repository's head; the poller runs on one of them.
    time.sleep(5)
    found = builds()[before:]
    assert len(found) == 1 and found[0]["complete"], found
    assert len(farm.api("changes")["changes"]) >= 1
    changes = [c for c in farm.api("changes")["changes"] if c["comments"] == "a change"]
    assert len(changes) == 1
    # Both masters hear of the build; one reports it: one status per state of its
    # context (queued, building, done) and one chat post.
    revision = git(work, "rev-parse", "HEAD")
    statuses = wait_until(lambda: (lambda found: found if len(found) >= 3 else None)(
        forge_api.received("POST", f"/repos/acme/pushed/statuses/{revision}")), 60,
        "three statuses of the pushed commit")
    posts = wait_until(lambda: forge_api.received("POST", CHAT), 60, "a chat post")
    time.sleep(3)        # what a second master would have sent has arrived by now
    statuses = forge_api.received("POST", f"/repos/acme/pushed/statuses/{revision}")
    assert [(c.body["state"], c.body["context"]) for c in statuses] == [
        ("pending", f"rustfarm/{HOST_TARGET}"), ("pending", f"rustfarm/{HOST_TARGET}"),
        ("success", f"rustfarm/{HOST_TARGET}")]
    posts = forge_api.received("POST", CHAT)
    assert [c.body["buildid"] for c in posts] == [found[0]["buildid"]]
    # One check run, made queued by one master and updated by the one that ran the build.
    def completed_runs():
        runs = [run for run in forge_api.check_runs.values() if run["head_sha"] == revision]
        return runs if runs and all(run["status"] == "completed" for run in runs) else None
    runs = wait_until(completed_runs, 60, "the pushed commit's completed check run")
    assert [(r["name"], r["status"], r.get("conclusion")) for r in runs] == \
        [(f"rustfarm/{HOST_TARGET}", "completed", "success")]
    assert len(forge_api.received("POST", "/repos/acme/pushed/check-runs")) == 1
    assert [c.body["status"] for c in forge_api.received(
        "PATCH", f"/repos/acme/pushed/check-runs/{runs[0]['id']}")] == ["in_progress", "completed"]


def test_status_shows_every_master_and_the_router(two_masters):
    out = two_masters.farm("status").stdout
    assert "router: running (pid " in out
    assert "database: PostgreSQL 1" in out and " running (pid " in out
    assert "master first: pid " in out and "master second: pid " in out
    assert out.count("answers") >= 2 and "does not answer" not in out
    assert "worker local-1: pid " in out and ", connected" in out
