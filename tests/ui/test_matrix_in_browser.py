"""The matrix's old address and a plain release page in a real browser (Debian's
Chromium): /plugins/matrix/ opens the web UI's Targets, whose download is the
binary's archive; a release page's checksums match the files.

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


def test_the_matrix_s_old_address_opens_the_targets_page_and_downloads(browser, matrix_farm):
    moved = requests.get(matrix_farm.url + "plugins/matrix/", allow_redirects=False, timeout=30)
    assert (moved.status_code, moved.headers["Location"]) == (302, "../../#/targets")
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(matrix_farm.url + "plugins/matrix/")
    page.wait_for_url("**/#/targets", timeout=30_000)
    hello = page.locator(f'td[data-project="hello"][data-target="{HOST_TARGET}"]')
    hello.wait_for(timeout=30_000)
    assert hello.get_attribute("data-result") == "success"
    assert hello.evaluate("cell => getComputedStyle(cell).backgroundColor") == GREEN
    broken = page.locator(f'td[data-project="broken"][data-target="{HOST_TARGET}"]')
    assert broken.evaluate("cell => getComputedStyle(cell).backgroundColor") == RED

    with page.expect_download() as started:
        hello.locator("a.download").click()
    download = started.value
    data = Path(download.path()).read_bytes()
    assert data[:2] == b"\x1f\x8b"
    cells = requests.get(matrix_farm.url + "plugins/matrix/data.json", timeout=30).json()["cells"]
    sums = requests.get(cells[f"hello {HOST_TARGET}"]["release_url"] + "SHA256SUMS",
                        timeout=30).text
    assert f"{hashlib.sha256(data).hexdigest()}  {HOST_TARGET}/{download.suggested_filename}" \
        in sums


def test_the_release_page_lists_every_target_with_its_checksum(browser, matrix_farm, tmp_path):
    page = browser.new_context().new_page()
    page.set_viewport_size({"width": 1100, "height": 400})
    cells = requests.get(matrix_farm.url + "plugins/matrix/data.json", timeout=30).json()["cells"]
    page.goto(cells[f"hello {HOST_TARGET}"]["release_url"])
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
