"""Pull and merge requests from a forge's real webhook payloads, built in containers of
the real worker image: a fork's request builds nothing until a maintainer labels it,
then builds its head as anyone's code (a volume of its own, removed after; the compile
cache read-only; no secret; nothing signed; its binary under the project's
pr-<number>/, which runs under qemu), with its commit statuses and GitHub check runs
on the forge's API (a recording stand-in); the owners' mail, on a change of result,
compares main's builds with main's, never with a request's; the repository's own
merge request builds as it opens; closing a request removes its artifacts."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from buildbot.process.results import SUCCESS

from rustfarm.names import PULL_REQUEST_PROPERTY, PULL_REQUEST_SOURCE
from rustfarm.workers.docker_volumes import CACHE_VOLUME_PROPERTY, pull_request_volume_name
from tests.support.binaries import run_downloaded
from tests.support.crates import write_crate
from tests.support.farm import RunningFarm, wait_until
from tests.support.forge_api import GITLAB_PROJECT_ID, RecordingForge, github_app_key
from tests.support.forge_payloads import pull_request_payload, signed_headers
from tests.support.git_repos import PushedRepository, git
from tests.support.smtp import LocalSmtpServer

from .conftest import TARGETS, up_for_the_module

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TARGET = "mipsel-unknown-linux-musl"     # static: it runs under the host's qemu-mipsel
POOL = "pr"
LABEL = "rustfarm: build"
TOKENS = {"hub": "hub-forge-token-5b2e", "lab": "lab-forge-token-91c4"}
# The GitHub App hub's check runs are made as.
APP_KEY, _ = github_app_key()
CHECKS = {"hub": "checks: {app_id: 4711}, ", "lab": ""}
# What the request's build script reports from inside its container.
PROBE = """\
use std::fs;

fn main() {
    let writable = fs::write("/home/rustbuild/.cache/sccache/pull-request-probe", b"x").is_ok();
    println!("cargo:warning=compile cache writable: {writable}");
    for (name, value) in std::env::vars() {
        println!("cargo:warning=env {name}={value}");
    }
}
"""


# A request whose code does not compile: error[E0308] at src/main.rs:2:18.
BROKEN = 'fn main() {\n    let n: u32 = "four";\n}\n'


def main_rs(text: str) -> str:
    return f'fn main() {{\n    println!("{text}");\n}}\n'


@pytest.fixture(scope="module")
def smtp():
    server = LocalSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pulls(built_chain, tmp_path_factory, forge_api, smtp):
    root = tmp_path_factory.mktemp("pulls")
    crate = write_crate(root / "crate", "hello", main_rs("hello from main"))
    (crate / "build.rs").write_text(PROBE)
    repo = PushedRepository(root / "git", "hello", crate)
    # The requests' heads, where the forges keep them (never a branch of the repository).
    heads = {}
    for ref, text in (("refs/pull/2/head", main_rs("hello from a fork")),
                      ("refs/merge-requests/3/head", main_rs("hello from a merge request")),
                      ("refs/pull/4/head", BROKEN)):
        git(repo.work, "checkout", "-q", "-b", ref.replace("/", "-"), "main")
        heads[ref] = repo.commit("src/main.rs", text, ref)
        git(repo.work, "push", "-q", "origin", f"HEAD:{ref}")
    git(repo.work, "checkout", "-q", "main")
    projects = "".join(f"""\
  {name}:
    source: {repo.url}
    poll_interval: 0
    test: false
    forge: {{kind: {kind}, repository: acme/{name}, api_url: "{forge_api.url}", {CHECKS[name]}
             pull_requests: {{label: "{LABEL}"}}}}
    notify: {{email: [owner@example.com], webhook: "{forge_api.url}/hooks/{name}"}}
""" for name, kind in (("hub", "github"), ("lab", "gitlab")))
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
notify: {{smtp: '127.0.0.1:{smtp.port}', from: farm@example.com}}
workers:
  {POOL}: {{kind: docker, count: 2, memory: 2g, standby: 0}}
targets:
  {TARGET}: {{pool: {POOL}, image: "{built_chain.reference(TARGET)}"}}
projects:
{projects}""")
    for name, token in TOKENS.items():
        farm.farm("forge-token", name, input=token + "\n")
    farm.farm("github-app-key", "hub", input=APP_KEY)
    farm.secrets = {name: farm.farm("webhook-secret", name).stdout.strip() for name in TOKENS}
    farm.heads = heads
    yield from up_for_the_module(farm, POOL)


def send(farm: RunningFarm, kind: str, project: str, number: int, head: str, what: str,
         **kwargs) -> str:
    body, event = pull_request_payload(kind, f"acme/{project}", number, head, what, **kwargs)
    reply = requests.post(f"{farm.url}change_hook/{kind}", data=body, timeout=30,
                          headers=signed_headers(kind, farm.secrets[project], body, event))
    assert reply.status_code == 200, reply.text
    return reply.text


def builds_of(farm: RunningFarm, project: str) -> list[dict]:
    [builder] = [b for b in farm.api("builders")["builders"] if b["name"] == f"{project}:{TARGET}"]
    return farm.api("builds", builderid=builder["builderid"], property="*")["builds"]


def finished(farm: RunningFarm, project: str, head: str) -> dict:
    def done():
        found = [b for b in builds_of(farm, project)
                 if b["properties"].get("got_revision", [None])[0] == head]
        return found[0] if found and found[0]["complete"] else None
    return wait_until(done, 600, f"a finished build of {project} at {head[:12]}")


def volumes() -> set[str]:
    return set(subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                              check=True).stdout.split())


def test_a_fork_s_request_builds_once_labelled_as_anyone_s_code(pulls, forge_api, tmp_path):
    head = pulls.heads["refs/pull/2/head"]
    assert send(pulls, "github", "hub", 2, head, "opened") == "no change found"
    assert send(pulls, "github", "hub", 2, head, "labeled", labels=(LABEL,)) == "1 change found"
    build = finished(pulls, "hub", head)
    logs = pulls.all_logs(build)
    assert build["results"] == SUCCESS, logs[-3000:]
    # The unlabelled request built nothing: this is the builder's only build.
    assert [b["buildid"] for b in builds_of(pulls, "hub")] == [build["buildid"]]
    props = build["properties"]
    assert props[PULL_REQUEST_PROPERTY] == [2, PULL_REQUEST_SOURCE]
    volume = pull_request_volume_name("test", "hub", TARGET, 2, build["number"])
    assert props[CACHE_VOLUME_PROPERTY][0] == volume
    wait_until(lambda: volume not in volumes(), 60, f"the request's volume {volume} removed")
    # From inside the build: the shared compile cache is read-only, and no secret of
    # the farm (forge tokens, webhook secrets) is in its environment or any log.
    assert "compile cache writable: false" in logs
    assert "env RUSTFARM_COMPILE_CACHE_READ_ONLY=1" in logs
    for secret in [*TOKENS.values(), *pulls.secrets.values(), APP_KEY.splitlines()[1]]:
        assert secret not in logs
    # Its binary is the request's, under pr-2/, and nothing of it is a signed release.
    [archive] = [u for u in pulls.artifact_urls(build) if u.endswith(".tar.gz")]
    assert f"/plugins/artifacts/hub/pr-2/{TARGET}/" in archive
    assert run_downloaded(archive, tmp_path, "hello", TARGETS[TARGET]).strip() == \
        "hello from a fork"
    stored = pulls.state / "artifacts" / "hub"
    assert sorted(p.name for p in stored.iterdir()) == ["pr-2"]
    assert not list(stored.rglob("*.minisig"))
    # Its statuses, on the request's head, with the project's token.
    calls = wait_until(lambda: (lambda found: found if len(found) >= 3 else None)(
        forge_api.received("POST", f"/repos/acme/hub/statuses/{head}")), 60, "3 statuses")
    assert [(c.body["state"], c.body["context"]) for c in calls] == \
        [("pending", f"rustfarm/{TARGET}")] * 2 + [("success", f"rustfarm/{TARGET}")]
    assert {c.header("Authorization") for c in calls} == {f"token {TOKENS['hub']}"}
    # And its check runs, there too.
    assert [(c.method, c.body["status"], c.body.get("conclusion"))
            for c in forge_api.check_run_calls("acme/hub", head)] \
        == [("POST", "queued", None), ("PATCH", "in_progress", None),
            ("PATCH", "completed", "success")]
    # One summary comment on the request, once its builds ended.
    [comment] = comments(forge_api, "/repos/acme/hub/issues/2/comments", 1)
    assert comment.body["body"].startswith(f"rustfarm: all 1 targets built for {head[:12]}\n")
    assert f"- `{TARGET}`: success" in comment.body["body"]
    assert comment.header("Authorization") == f"token {TOKENS['hub']}"
    # Labelled again, the same head is not built again, nor commented on.
    send(pulls, "github", "hub", 2, head, "labeled", labels=("bug", LABEL))
    assert len(builds_of(pulls, "hub")) == 1
    assert len(forge_api.received("POST", "/repos/acme/hub/issues/2/comments")) == 1


def comments(forge_api: RecordingForge, path: str, count: int) -> list:
    return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
        forge_api.received("POST", path)), 60, f"{count} comment(s) at {path}")


def test_a_failed_request_s_comment_names_the_target_and_its_first_error(pulls, forge_api):
    head = pulls.heads["refs/pull/4/head"]
    assert send(pulls, "github", "hub", 4, head, "opened", from_fork=False) == "1 change found"
    build = finished(pulls, "hub", head)
    assert build["results"] != SUCCESS
    [comment] = comments(forge_api, "/repos/acme/hub/issues/4/comments", 1)
    body = comment.body["body"]
    assert body.startswith(f"rustfarm: 1 of 1 targets failed for {head[:12]}\n"), body
    assert f"- `{TARGET}`: failure (" in body
    assert "error[E0308]: mismatched types\n --> src/main.rs:2:18" in body
    ended = forge_api.check_run_calls("acme/hub", head)[-1].body
    assert ended["conclusion"] == "failure"
    assert "error[E0308]: mismatched types\n --> src/main.rs:2:18" in ended["output"]["summary"]


def test_a_request_s_build_is_not_the_one_the_owners_mail_compares_with(pulls, forge_api,
                                                                       smtp):
    """Request 4's failed build is the last of hub's builder: main passing after it is no
    change of result for the owners, whose last build of main is the one compared, so no
    mail says that it passes again."""
    farm = pulls
    farm.login()
    [brid] = farm.force("force-hub", targets=[TARGET], branch="main", revision="").values()
    main = farm.wait_for_build(brid, timeout=600)
    assert main["results"] == SUCCESS, farm.all_logs(main)[-3000:]
    [before] = [b for b in builds_of(farm, "hub") if b["number"] == main["number"] - 1]
    assert before["properties"].get(PULL_REQUEST_PROPERTY) and before["results"] != SUCCESS
    # The JSON webhook reports the same build end as the mail would: once it has...
    wait_until(lambda: [c for c in forge_api.received("POST", "/hooks/hub")
                        if c.body["number"] == main["number"]] or None, 60,
               "main's build posted to the project's webhook")
    time.sleep(2)
    # ... no mail went out, about main or about the request's failure.
    assert smtp.mails == []


def test_the_repository_s_own_merge_request_builds_as_it_opens(pulls, forge_api, tmp_path):
    head = pulls.heads["refs/merge-requests/3/head"]
    assert send(pulls, "gitlab", "lab", 3, head, "opened", from_fork=False) == "1 change found"
    build = finished(pulls, "lab", head)
    assert build["results"] == SUCCESS, pulls.all_logs(build)[-3000:]
    assert build["properties"][PULL_REQUEST_PROPERTY] == [3, PULL_REQUEST_SOURCE]
    [archive] = [u for u in pulls.artifact_urls(build) if u.endswith(".tar.gz")]
    assert f"/plugins/artifacts/lab/pr-3/{TARGET}/" in archive
    assert run_downloaded(archive, tmp_path, "hello", TARGETS[TARGET]).strip() == \
        "hello from a merge request"
    [note] = comments(forge_api, f"/api/v4/projects/{GITLAB_PROJECT_ID}/merge_requests/3/notes",
                      1)
    assert note.body["body"].startswith(f"rustfarm: all 1 targets built for {head[:12]}\n")


def test_closing_a_request_removes_its_artifacts(pulls):
    for kind, project, number, ref in (("github", "hub", 2, "refs/pull/2/head"),
                                       ("gitlab", "lab", 3, "refs/merge-requests/3/head")):
        place = pulls.state / "artifacts" / project / f"pr-{number}"
        assert place.is_dir()
        builds = len(builds_of(pulls, project))
        assert send(pulls, kind, project, number, pulls.heads[ref], "closed",
                    from_fork=False) == "no change found"
        assert not place.exists()
        assert len(builds_of(pulls, project)) == builds
