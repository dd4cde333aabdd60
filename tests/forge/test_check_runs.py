"""A real master makes GitHub check runs, as the GitHub App farm.yaml names, for a
passing and a failing commit pushed by webhook: the App's JWT, the installation token
it is exchanged for, and the check runs (queued, in progress, completed with their
conclusion and output) as a recording stand-in for GitHub's API got them: one run per
build, made queued and then updated. Neither the
App's key nor the token is in the master's log or a build's properties or logs."""

from __future__ import annotations

import jwt
import pytest
import requests

from tests.support.crates import write_crate
from tests.support.farm import HOST_TARGET, RunningFarm, local_farm_yaml, wait_until
from tests.support.forge_api import GITHUB_INSTALLATION_ID, INSTALLATION_TOKEN, github_app_key
from tests.support.forge_payloads import push_payload, signed_headers
from tests.support.git_repos import PushedRepository

from ..integration.conftest import require_cargo

def good(text: str) -> str:
    return f'fn main() {{\n    println!("{text}");\n}}\n'


BAD = 'fn main() {\n    let n: u32 = "four";\n}\n'
APP_ID = 12345
PINNED_APP_ID, PINNED_INSTALLATION = 678, 4242
CONTEXT = f"rustfarm/{HOST_TARGET}"


@pytest.fixture(scope="module")
def keys():
    return {"checked": github_app_key(), "pinned": github_app_key()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    crate = write_crate(tmp_path_factory.mktemp("crate") / "checked", "checked",
                        good("first"))
    return PushedRepository(tmp_path_factory.mktemp("git"), "checked", crate)


def project_yaml(name: str, source: str, api_url: str, checks: str) -> str:
    return (f"  {name}:\n    source: {source}\n    poll_interval: 0\n    test: false\n"
            f"    forge:\n      kind: github\n      repository: acme/{name}\n"
            f"      api_url: \"{api_url}\"\n      statuses: false\n"
            f"      pull_requests: false\n      checks: {checks}\n")


@pytest.fixture(scope="module")
def checks_farm(tmp_path_factory, repo, forge_api, keys):
    require_cargo()
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(
        project_yaml("checked", repo.url, forge_api.url, f"{{app_id: {APP_ID}}}")
        + project_yaml("pinned", repo.url, forge_api.url,
                       f"{{app_id: {PINNED_APP_ID}, installation_id: {PINNED_INSTALLATION}}}")))
    refused = farm.farm("check", check=False)
    assert refused.returncode == 1 and "farm github-app-key checked" in refused.stderr, \
        refused.stderr
    bad = farm.farm("github-app-key", "checked", input="not a key\n", check=False)
    assert bad.returncode == 1 and "not a private key" in bad.stderr
    for name, (pem, _) in keys.items():
        farm.farm("github-app-key", name, input=pem)
    farm.secrets = {name: farm.farm("webhook-secret", name).stdout.strip() for name in keys}
    try:
        yield farm.up()
    finally:
        farm.down()


def pushed_build(farm: RunningFarm, repo: PushedRepository, project: str, main_rs: str,
                 message: str) -> dict:
    """The finished build of a commit pushed to the repository, announced by webhook."""
    before = repo.head()
    repo.commit("src/main.rs", main_rs, message)
    after = repo.push()
    body = push_payload("github", f"acme/{project}", before, after)
    reply = requests.post(f"{farm.url}change_hook/github", data=body, timeout=30,
                          headers=signed_headers("github", farm.secrets[project], body))
    assert (reply.status_code, reply.text) == (200, "1 change found")
    builder = next(b for b in farm.api("builders")["builders"]
                   if b["name"] == f"{project}:{HOST_TARGET}")

    def done():
        builds = farm.api("builds", builderid=builder["builderid"],
                          property="got_revision")["builds"]
        found = [b for b in builds if b["properties"].get("got_revision", [None])[0] == after]
        return found[0] if found and found[0]["complete"] else None
    return wait_until(done, 180, f"a finished build of {project} at {after[:12]}")


def check_runs(forge_api, project: str, sha: str) -> list:
    """The calls that made ``sha``'s one check run and updated it: its POST, its PATCHes."""
    return forge_api.check_run_calls(f"acme/{project}", sha)


def build_url(farm: RunningFarm, build: dict) -> str:
    return f"{farm.url}#/builders/{build['builderid']}/builds/{build['number']}"


@pytest.fixture(scope="module")
def built(checks_farm, repo):
    passing = pushed_build(checks_farm, repo, "checked", good("passes"), "passes")
    failing = pushed_build(checks_farm, repo, "checked", BAD, "fails")
    return passing, failing


def bearer(call) -> str:
    scheme, _, credential = (call.header("Authorization") or "").partition(" ")
    assert scheme == "Bearer"
    return credential


def test_the_app_s_jwt_buys_an_installation_token_once(checks_farm, built, forge_api, keys):
    lookups = forge_api.received("GET", "/repos/acme/checked/installation")
    tokens = forge_api.received("POST", f"/app/installations/{GITHUB_INSTALLATION_ID}/")
    assert len(lookups) == 1
    assert [c.path for c in tokens] == \
        [f"/app/installations/{GITHUB_INSTALLATION_ID}/access_tokens"]
    for call in lookups + tokens:
        claims = jwt.decode(bearer(call), keys["checked"][1], algorithms=["RS256"],
                            issuer=str(APP_ID))
        assert 0 < claims["exp"] - claims["iat"] <= 600


def test_check_runs_of_a_passing_and_a_failing_commit(checks_farm, built, forge_api):
    passing, failing = built
    for build, conclusion in ((passing, "success"), (failing, "failure")):
        sha = build["properties"]["got_revision"][0]
        calls = check_runs(forge_api, "checked", sha)
        assert [(c.method, c.body["name"], c.body["status"], c.body.get("conclusion"))
                for c in calls] \
            == [("POST", CONTEXT, "queued", None), ("PATCH", CONTEXT, "in_progress", None),
                ("PATCH", CONTEXT, "completed", conclusion)]
        assert {c.body["external_id"] for c in calls} == {str(build["buildrequestid"])}
        assert calls[0].body["details_url"].startswith(f"{checks_farm.url}#/buildrequests/")
        assert [c.body["details_url"] for c in calls[1:]] == [build_url(checks_farm, build)] * 2
        assert build_url(checks_farm, build) in calls[2].body["output"]["summary"]
        assert "started_at" in calls[1].body and "completed_at" in calls[2].body
        assert {bearer(c) for c in calls} == {INSTALLATION_TOKEN}
    output = check_runs(forge_api, "checked", failing["properties"]["got_revision"][0])[2]\
        .body["output"]
    failed = next(s for s in checks_farm.steps(failing) if s["results"] == 2)
    assert output["title"] == failing["state_string"]
    assert f"Failed step: `{failed['name']}`" in output["summary"]
    assert "error[E0308]: mismatched types" in output["summary"]
    assert "src/main.rs:2:18" in output["summary"]


def test_a_named_installation_is_not_looked_up(checks_farm, repo, forge_api, keys):
    build = pushed_build(checks_farm, repo, "pinned", good("pinned"), "pinned")
    calls = check_runs(forge_api, "pinned", build["properties"]["got_revision"][0])
    assert calls[-1].body["conclusion"] == "success"
    assert not forge_api.received("GET", "/repos/acme/pinned/installation")
    [token] = forge_api.received("POST", f"/app/installations/{PINNED_INSTALLATION}/")
    assert jwt.decode(bearer(token), keys["pinned"][1], algorithms=["RS256"],
                      issuer=str(PINNED_APP_ID))


def test_the_key_and_the_token_stay_out_of_logs_and_properties(checks_farm, built, keys):
    log = (checks_farm.state / "master" / "twistd.log").read_text()
    for build in built:
        shown = log + str(checks_farm.api(f"builds/{build['buildid']}/properties")) \
            + checks_farm.all_logs(build)
        assert INSTALLATION_TOKEN not in shown
        for pem, _ in keys.values():
            assert pem.splitlines()[1] not in shown
