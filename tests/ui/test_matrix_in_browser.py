"""The target matrix and a release page in a real browser (Debian's Chromium): the
right colours for a passing and a failing build, a download that is the binary's
archive, a release page whose checksums match the files.

With RUSTFARM_SCREENSHOTS=DIR the screenshots the README shows are written to
DIR (docs/screenshots keeps them)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import requests


from .conftest import HOST_TARGET, hello_and_broken

pytestmark = pytest.mark.browser

GREEN = "rgb(200, 239, 200)"
RED = "rgb(244, 188, 188)"


@pytest.fixture(scope="module")
def matrix_farm(tmp_path_factory):
    with hello_and_broken(tmp_path_factory, "matrix") as farm:
        yield farm


def screenshot(page, name: str, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    wanted = os.environ.get("RUSTFARM_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(wanted) / name)


def test_the_matrix_shows_results_and_downloads_the_binary(browser, matrix_farm, tmp_path):
    page = browser.new_context(accept_downloads=True).new_page()
    page.set_viewport_size({"width": 900, "height": 500})
    page.goto(matrix_farm.url + "plugins/matrix/")
    hello = page.locator(f'td[data-project="hello"][data-target="{HOST_TARGET}"]')
    broken = page.locator(f'td[data-project="broken"][data-target="{HOST_TARGET}"]')
    hello.wait_for(timeout=30_000)
    assert hello.get_attribute("data-result") == "success"
    assert hello.evaluate("cell => getComputedStyle(cell).backgroundColor") == GREEN
    assert broken.get_attribute("data-result") == "failure"
    assert broken.evaluate("cell => getComputedStyle(cell).backgroundColor") == RED
    assert broken.locator("a.download").count() == 0
    screenshot(page, "matrix.png", tmp_path)

    with page.expect_download() as started:
        hello.locator("a.download").click()
    download = started.value
    data = Path(download.path()).read_bytes()
    assert data[:2] == b"\x1f\x8b"
    release_url = hello.locator("a.rev").get_attribute("href")
    sums = requests.get(release_url + "SHA256SUMS", timeout=30).text
    assert f"{hashlib.sha256(data).hexdigest()}  {HOST_TARGET}/{download.suggested_filename}" \
        in sums

    # The project filter leaves the other rows out.
    page.fill("#project", "hel")
    page.locator('tr[data-project="broken"]').wait_for(state="detached", timeout=10_000)
    assert page.locator('tr[data-project="hello"]').count() == 1


def test_the_release_page_lists_every_target_with_its_checksum(browser, matrix_farm, tmp_path):
    page = browser.new_context().new_page()
    page.set_viewport_size({"width": 1100, "height": 400})
    page.goto(matrix_farm.url + "plugins/matrix/")
    link = page.locator(f'td[data-project="hello"][data-target="{HOST_TARGET}"] a.rev')
    link.wait_for(timeout=30_000)
    link.click()
    page.get_by_role("heading", name="hello").wait_for(timeout=10_000)
    rows = page.locator("table tr").all()[1:]
    assert len(rows) == 1
    target, archive, _, binaries, checksum, signed, rebuilt = (
        cell.inner_text() for cell in rows[0].locator("td").all())
    assert target == HOST_TARGET
    assert binaries.startswith("hello ") and "signature" in signed and rebuilt == "not checked"
    data = requests.get(page.url + f"{HOST_TARGET}/{archive}", timeout=30).content
    assert hashlib.sha256(data).hexdigest() == checksum
    assert page.get_by_role("link", name="SHA256SUMS").count() == 1
    screenshot(page, "release.png", tmp_path)
