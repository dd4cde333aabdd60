"""Pushes from GitHub, GitLab and Gitea reach a real master's change hooks, build their
project's builders once, and post a commit status per target to the forge's API (a
recording stand-in); wrong and missing signatures are refused without logging the
payload."""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.farm import EXAMPLE, HOST_TARGET, RunningFarm, local_farm_yaml, wait_until
from tests.support.forge_api import GITLAB_PROJECT_ID, RecordingForge
from tests.support.forge_payloads import PAYLOAD_MARKER, push_payload, signed_headers
from tests.support.git_repos import PushedRepository

from ..integration.conftest import require_cargo

FORGES = {"polled": ("github", "acme/polled"), "two": ("github", "acme/two"),
          "three": ("gitlab", "group/sub/three"), "four": ("gitea", "acme/four")}
TOKENS = {name: f"{name}-forge-token-0d9f" for name in FORGES}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("git")
    return {"polled": PushedRepository(root, "polled", EXAMPLE),
            "shared": PushedRepository(root, "shared", EXAMPLE)}


@pytest.fixture(scope="module")
def forge_farm(tmp_path_factory, repos, forge_api):
    require_cargo()
    projects = ""
    for name, (kind, repository) in FORGES.items():
        source = repos["polled" if name == "polled" else "shared"].url
        poll = 1 if name == "polled" else 0
        projects += (f"  {name}:\n    source: {source}\n    poll_interval: {poll}\n"
                     f"    test: false\n    binaries: [hello]\n"
                     f"    forge: {{kind: {kind}, repository: {repository}, "
                     f"api_url: \"{forge_api.url}\"}}\n")
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(projects, workers=4))
    refused = farm.farm("check", check=False)
    assert refused.returncode == 1 and "farm forge-token polled" in refused.stderr, \
        refused.stderr
    for name, token in TOKENS.items():
        farm.farm("forge-token", name, input=token + "\n")
    farm.secrets = {name: farm.farm("webhook-secret", name).stdout.strip() for name in FORGES}
    try:
        yield farm.up()
    finally:
        farm.down()


def hook(farm: RunningFarm, kind: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(f"{farm.url}change_hook/{kind}", data=body, headers=headers, timeout=30)


def builds_of(farm: RunningFarm, project: str) -> list[dict]:
    builder = next(b for b in farm.api("builders")["builders"]
                   if b["name"] == f"{project}:{HOST_TARGET}")
    return farm.api("builds", builderid=builder["builderid"], property="got_revision")["builds"]


def first_step_started(farm: RunningFarm, project: str) -> str | None:
    """The name of the farm's first step of the project's build, once it started (after
    Buildbot's worker_preparation)."""
    for build in builds_of(farm, project):
        steps = [s for s in farm.steps(build) if s["name"] != "worker_preparation"]
        if steps and steps[0]["started_at"] is not None:
            return steps[0]["name"]
    return None


def built_revisions(farm: RunningFarm, project: str) -> list[str]:
    return [b["properties"].get("got_revision", [None])[0] for b in builds_of(farm, project)]


def finished_build(farm: RunningFarm, project: str, revision: str, timeout: float = 180) -> dict:
    def done():
        found = [b for b in builds_of(farm, project)
                 if b["properties"].get("got_revision", [None])[0] == revision]
        return found[0] if found and found[0]["complete"] else None
    return wait_until(done, timeout, f"a finished build of {project} at {revision[:12]}")


def push(repos, which: str, text: str) -> tuple[str, str]:
    repo = repos[which]
    before = repo.head()
    repo.commit("src/main.rs", f'fn main() {{\n    println!("{text}");\n}}\n', text)
    return before, repo.push()


def statuses(forge_api: RecordingForge, path: str, count: int) -> list:
    return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
        forge_api.received("POST", path)), 60, f"{count} statuses at {path}")


def build_url(farm: RunningFarm, build: dict) -> str:
    return f"{farm.url}#/builders/{build['builderid']}/builds/{build['number']}"


def test_github_push_builds_its_project_and_posts_its_statuses(forge_farm, repos, forge_api):
    before, after = push(repos, "shared", "github push")
    body = push_payload("github", "acme/two", before, after)
    reply = hook(forge_farm, "github", body, signed_headers("github", forge_farm.secrets["two"],
                                                            body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    wait_until(lambda: first_step_started(forge_farm, "two"), 30,
               "the first step of a build of two", interval=0.02)
    build = finished_build(forge_farm, "two", after)
    assert build["results"] == 0
    # Only the project the payload names: the others on the same repository wait.
    for other in ("three", "four"):
        assert after not in built_revisions(forge_farm, other)

    calls = statuses(forge_api, f"/repos/acme/two/statuses/{after}", 3)
    context = f"rustfarm/{HOST_TARGET}"
    assert [(c.body["state"], c.body["context"]) for c in calls] == \
        [("pending", context), ("pending", context), ("success", context)]
    assert calls[0].body["target_url"].startswith(f"{forge_farm.url}#/buildrequests/")
    assert [c.body["target_url"] for c in calls[1:]] == [build_url(forge_farm, build)] * 2
    assert {c.header("Authorization") for c in calls} == {f"token {TOKENS['two']}"}


def test_gitlab_push_builds_and_posts_statuses_to_the_project_id(forge_farm, repos, forge_api):
    before, after = push(repos, "shared", "gitlab push")
    body = push_payload("gitlab", "group/sub/three", before, after)
    reply = hook(forge_farm, "gitlab", body,
                 signed_headers("gitlab", forge_farm.secrets["three"], body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    build = finished_build(forge_farm, "three", after)
    assert build["results"] == 0
    calls = statuses(forge_api, f"/api/v4/projects/{GITLAB_PROJECT_ID}/statuses/{after}", 3)
    assert [(c.body["state"], c.body["name"], c.body["ref"]) for c in calls] == \
        [(state, f"rustfarm/{HOST_TARGET}", "main") for state in ("pending", "running", "success")]
    assert calls[-1].body["target_url"] == build_url(forge_farm, build)
    assert {c.header("PRIVATE-TOKEN") for c in calls} == {TOKENS["three"]}
    lookups = forge_api.received("GET", "/api/v4/projects/")
    assert {c.path for c in lookups} == {"/api/v4/projects/group%2Fsub%2Fthree"}


def test_gitea_push_builds_and_posts_statuses(forge_farm, repos, forge_api):
    before, after = push(repos, "shared", "gitea push")
    body = push_payload("gitea", "acme/four", before, after)
    reply = hook(forge_farm, "gitea", body, signed_headers("gitea", forge_farm.secrets["four"],
                                                           body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    build = finished_build(forge_farm, "four", after)
    assert build["results"] == 0
    calls = statuses(forge_api, f"/api/v1/repos/acme/four/statuses/{after}", 3)
    assert [(c.body["state"], c.body["context"]) for c in calls] == \
        [(state, f"rustfarm/{HOST_TARGET}") for state in ("pending", "pending", "success")]
    assert calls[-1].body["target_url"] == build_url(forge_farm, build)
    assert {c.header("Authorization") for c in calls} == {f"token {TOKENS['four']}"}


@pytest.mark.parametrize("kind, project", [("github", "two"), ("gitlab", "three"),
                                           ("gitea", "four")])
def test_wrong_or_missing_signatures_are_refused_and_logged_without_the_payload(
        forge_farm, repos, kind, project):
    before, after = push(repos, "shared", f"unsigned {kind} push")
    body = push_payload(kind, FORGES[project][1], before, after)
    missing = hook(forge_farm, kind, body, signed_headers(kind, None, body))
    wrong = hook(forge_farm, kind, body, signed_headers(kind, "not-the-secret", body))
    # Signed with another project's secret: each project's own is checked.
    other = hook(forge_farm, kind, body, signed_headers(kind, forge_farm.secrets["polled"], body))
    unknown = hook(forge_farm, kind, push_payload(kind, "acme/elsewhere", before, after),
                   signed_headers(kind, forge_farm.secrets[project], body))
    assert (missing.status_code, wrong.status_code, other.status_code, unknown.status_code) \
        == (401, 403, 403, 403), (missing.text, wrong.text, other.text, unknown.text)
    time.sleep(2)
    assert after not in built_revisions(forge_farm, project)
    log = (forge_farm.state / "master" / "twistd.log").read_text()
    assert f"refused /change_hook/{kind}" in log
    assert PAYLOAD_MARKER not in log
    assert forge_farm.secrets[project] not in log


def test_a_push_seen_by_webhook_and_poll_builds_once(forge_farm, repos):
    before, after = push(repos, "polled", "polled and hooked")
    body = push_payload("github", "acme/polled", before, after)
    reply = hook(forge_farm, "github", body, signed_headers("github", forge_farm.secrets["polled"],
                                                            body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    finished_build(forge_farm, "polled", after)
    time.sleep(4)     # the poller (every second) has seen the push too
    assert built_revisions(forge_farm, "polled").count(after) == 1
    # The other way round: the poll first, then the webhook.
    before, after = push(repos, "polled", "polled then hooked")
    finished_build(forge_farm, "polled", after)
    body = push_payload("github", "acme/polled", before, after)
    reply = hook(forge_farm, "github", body, signed_headers("github", forge_farm.secrets["polled"],
                                                            body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    time.sleep(3)
    assert built_revisions(forge_farm, "polled").count(after) == 1


def test_a_github_ping_is_answered_and_builds_nothing(forge_farm):
    body = (b'{"zen": "Keep it logically awesome.", "hook_id": 30, "hook": {"type": "Repository",'
            b' "id": 30, "events": ["push"], "config": {"content_type": "json",'
            b' "insecure_ssl": "0", "url": "https://farm.example.com/change_hook/github"}},'
            b' "repository": {"id": 186853002, "name": "two", "full_name": "acme/two"},'
            b' "sender": {"login": "dev", "id": 21031067}}')
    headers = {**signed_headers("github", forge_farm.secrets["two"], body), "X-GitHub-Event": "ping"}
    reply = hook(forge_farm, "github", body, headers)
    assert (reply.status_code, reply.text) == (200, "no change found")


def test_a_project_added_by_reload_gets_its_webhooks(forge_farm, repos, forge_api):
    config = forge_farm.config
    config.write_text(config.read_text() + (
        f"  five:\n    source: {repos['shared'].url}\n    poll_interval: 0\n    test: false\n"
        f"    forge: {{kind: gitea, repository: acme/five, api_url: \"{forge_api.url}\"}}\n"))
    refused = forge_farm.farm("reload", check=False)
    assert refused.returncode == 1 and "farm forge-token five" in refused.stderr
    forge_farm.farm("forge-token", "five", input="five-token\n")
    secret = forge_farm.farm("webhook-secret", "five").stdout.strip()
    forge_farm.farm("reload")
    before, after = push(repos, "shared", "after reload")
    body = push_payload("gitea", "acme/five", before, after)
    reply = hook(forge_farm, "gitea", body, signed_headers("gitea", secret, body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    assert finished_build(forge_farm, "five", after)["results"] == 0


def test_no_forge_token_reaches_a_build_or_its_properties(forge_farm):
    builds = forge_farm.api("builds", property="*")["builds"]
    assert builds
    for build in builds:
        shown = str(build.get("properties", {}))
        assert not any(token in shown for token in TOKENS.values())
    log = (forge_farm.state / "master" / "twistd.log").read_text()
    assert not any(token in log for token in TOKENS.values())
