"""Debian's Chromium, driven by Playwright, for the web UI's tests."""

from __future__ import annotations

import shutil

import pytest

from tests.support.docker_engine import unavailable

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
