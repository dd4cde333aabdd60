"""A project's owners get one mail when its build breaks and one when it is fixed,
through a real SMTP server; a chat system gets every build as JSON."""

from __future__ import annotations

import time

import pytest

from tests.support.crates import write_crate
from tests.support.farm import HOST_TARGET, RunningFarm, local_farm_yaml, wait_until
from tests.support.forge_api import RecordingForge
from tests.support.git_repos import PushedRepository
from tests.support.smtp import LocalSmtpServer

from ..integration.conftest import require_cargo

# Chat systems' webhook URLs hold their token: it must stay out of the master's log.
CHAT_PATH = "/hooks/T0001/s3cr3t-hook-token"
GOOD = 'fn main() {\n    println!("fine");\n}\n'
BAD = 'fn main() {\n    let n: u32 = "four";\n}\n'


@pytest.fixture(scope="module")
def smtp():
    server = LocalSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chat():
    server = RecordingForge().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    crate = write_crate(tmp_path_factory.mktemp("crate") / "flaky", "flaky", GOOD)
    return PushedRepository(tmp_path_factory.mktemp("git"), "flaky", crate)


@pytest.fixture(scope="module")
def notifying_farm(tmp_path_factory, smtp, chat, repo):
    require_cargo()
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), (
        f"notify: {{smtp: '127.0.0.1:{smtp.port}', from: farm@example.com}}\n"
        + local_farm_yaml(f"""\
  flaky:
    source: {repo.url}
    poll_interval: 0
    test: false
    notify:
      email: [owner@example.com, second@example.com]
      webhook: "{chat.url}{CHAT_PATH}"
""")))
    try:
        yield farm.up()
    finally:
        farm.down()


def forced_build(farm: RunningFarm) -> dict:
    [brid] = farm.force("force-flaky", targets=[HOST_TARGET], branch="main", revision="",
                        profile="release").values()
    return farm.wait_for_build(brid)


def test_mail_on_breaking_and_on_fixing_only(notifying_farm, smtp, chat, repo):
    farm = notifying_farm
    farm.login()
    results = [forced_build(farm)["results"]]
    repo.commit("src/main.rs", BAD, "break it")
    repo.push()
    results.append(forced_build(farm)["results"])
    wait_until(lambda: smtp.mails, 30, "the mail saying the build broke")
    results.append(forced_build(farm)["results"])
    repo.commit("src/main.rs", GOOD, "fix it")
    repo.push()
    fixed = forced_build(farm)
    results.append(fixed["results"])
    assert results == [0, 2, 2, 0]
    wait_until(lambda: len(smtp.mails) >= 2, 30, "the mail saying the build is fixed")
    time.sleep(2)
    builder = f"flaky:{HOST_TARGET}"
    assert [m["Subject"] for m in smtp.mails] == [f"{builder}: broken (failure)",
                                                  f"{builder}: passes again"]
    assert {m["From"] for m in smtp.mails} == {"farm@example.com"}
    assert [sorted(m["X-Envelope-To"].split(", ")) for m in smtp.mails] == \
        [["owner@example.com", "second@example.com"]] * 2
    body = smtp.mails[1].get_payload(decode=True).decode()
    assert f"{farm.url}#/builders/{fixed['builderid']}/builds/{fixed['number']}" in body
    assert "(the build before was failure)" in body

    posted = wait_until(lambda: (lambda c: c if len(c) >= 4 else None)(
        chat.received("POST", CHAT_PATH)), 30, "four builds posted to the chat webhook")
    assert [c.body["results"] for c in posted] == [0, 2, 2, 0]
    assert {c.body["builder"]["name"] for c in posted} == {builder}
    assert posted[-1].body["number"] == fixed["number"]
    assert "s3cr3t-hook-token" not in (farm.state / "master" / "twistd.log").read_text()
