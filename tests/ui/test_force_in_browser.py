"""A person in a real browser (Debian's Chromium): log in, press force, see the build succeed."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.docker_engine import unavailable
from tests.support.farm import EXAMPLE, RunningFarm

from .conftest import HOST_TARGET

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ui_farm(tmp_path_factory):
    if not shutil.which("cargo"):
        unavailable("cargo is not installed")
    farm = RunningFarm(tmp_path_factory.mktemp("ui"), f"""\
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets: {{{HOST_TARGET}: {{pool: local, runner: native}}}}
projects: {{hello: {{source: {EXAMPLE}}}}}
""")
    try:
        yield farm.up()
    finally:
        farm.down()


def test_log_in_force_a_build_and_watch_it_succeed(browser, ui_farm, tmp_path):
    context = browser.new_context(http_credentials={"username": "admin",
                                                    "password": ui_farm.password()})
    page = context.new_page()
    page.goto(ui_farm.url + "#/builders")
    builder_link = page.get_by_role("link", name=f"hello:{HOST_TARGET}")
    builder_link.wait_for(timeout=30_000)
    # Anonymous: the page offers a login and no user name.
    assert page.get_by_text("admin").count() == 0

    page.goto(ui_farm.url + "auth/login")
    page.goto(ui_farm.url + "#/builders")
    page.get_by_text("admin").first.wait_for(timeout=30_000)
    page.get_by_role("link", name=f"hello:{HOST_TARGET}").click()

    page.get_by_role("button", name="Force build").click()
    page.get_by_text(f"Build hello for {HOST_TARGET}").wait_for(timeout=10_000)
    page.get_by_role("button", name="Start build").click()

    page.wait_for_url(re.compile(r".*#/builders/\d+/builds/\d+$"), timeout=60_000)
    build_number = int(page.url.rsplit("/", 1)[1])
    page.get_by_text("Build successful").first.wait_for(timeout=180_000)
    page.screenshot(path=str(tmp_path / "build.png"))
    # The build page lists the artifact's link.
    link = page.get_by_role("link", name=re.compile(rf"hello-[0-9a-f]{{12}}-{HOST_TARGET}\.tar\.gz"))
    assert link.count() >= 1

    builds = ui_farm.api("builds", number=build_number)["builds"]
    assert builds and builds[0]["results"] == 0
    context.close()
