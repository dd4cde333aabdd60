"""Debian's Chromium, driven by Playwright, for the web UI's tests."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest

from tests.support.crates import broken_crate
from tests.support.docker_engine import unavailable
from tests.support.farm import EXAMPLE, RunningFarm

CHROMIUM = "/usr/bin/chromium"
HOST_TARGET = "x86_64-unknown-linux-gnu"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        unavailable("Debian's chromium is not installed (tests/run installs it when root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def hello_and_broken(tmp_path_factory, name: str):
    """A farm of local workers that has built the example (success) and a broken crate
    (failure) once each; ``farm.builds`` holds each project's build."""
    if not shutil.which("cargo"):
        unavailable("cargo is not installed")
    broken = broken_crate(tmp_path_factory.mktemp("broken"))
    farm = RunningFarm(tmp_path_factory.mktemp(name), f"""\
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 2}}}}
targets: {{{HOST_TARGET}: {{pool: local, runner: native}}}}
projects:
  hello: {{source: {EXAMPLE}, binaries: [hello]}}
  broken: {{source: {broken}}}
""")
    farm.up()
    try:
        farm.login()
        farm.builds = {}
        for project in ("hello", "broken"):
            [brid] = farm.force(f"force-{project}").values()
            farm.builds[project] = farm.wait_for_build(brid, timeout=300)
        yield farm
    finally:
        farm.down()
