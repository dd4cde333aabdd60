"""The farm's pages of Buildbot's own web UI (master/www_plugin/) in a real browser
(Debian's Chromium): after logging in, Buildbot's menu has Targets and Releases;
Targets shows the matrix with the right results, Releases a project's release with
every target's archive (whose checksum matches the file), and a build's page links
to its release there. The old plain pages still answer."""

from __future__ import annotations

import hashlib

import pytest
import requests


from .conftest import HOST_TARGET, hello_and_broken
from .test_matrix_in_browser import GREEN, RED, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ui_farm(tmp_path_factory):
    with hello_and_broken(tmp_path_factory, "www-plugin") as farm:
        yield farm


@pytest.fixture
def page(browser, ui_farm):
    """A page of Buildbot's UI, logged in as admin through its login."""
    context = browser.new_context(http_credentials={"username": "admin",
                                                    "password": ui_farm.password()})
    page = context.new_page()
    page.set_viewport_size({"width": 1300, "height": 700})
    page.goto(ui_farm.url + "auth/login")
    page.goto(ui_farm.url + "#/builders")
    page.get_by_text("admin").first.wait_for(timeout=30_000)
    yield page
    context.close()


def menu_entry(page, caption: str):
    return page.locator(".bb-sidebar-item").filter(has_text=caption).first


def test_targets_is_a_menu_entry_showing_the_matrix(page, ui_farm, tmp_path):
    menu_entry(page, "Targets").click()
    page.wait_for_url("**/#/targets", timeout=10_000)
    hello = page.locator(f'td[data-project="hello"][data-target="{HOST_TARGET}"]')
    broken = page.locator(f'td[data-project="broken"][data-target="{HOST_TARGET}"]')
    hello.wait_for(timeout=30_000)
    assert hello.get_attribute("data-result") == "success"
    assert hello.evaluate("cell => getComputedStyle(cell).backgroundColor") == GREEN
    assert broken.get_attribute("data-result") == "failure"
    assert broken.evaluate("cell => getComputedStyle(cell).backgroundColor") == RED
    assert broken.locator("a.download").count() == 0
    # Buildbot's own look: its sidebar and top bar are still there around the matrix.
    assert menu_entry(page, "Builds").is_visible()
    screenshot(page, "ui-targets.png", tmp_path)

    # The filter leaves the other rows out.
    page.fill("#rf-project", "hel")
    page.locator('tr[data-project="broken"]').wait_for(state="detached", timeout=10_000)
    assert page.locator('tr[data-project="hello"]').count() == 1

    # A cell's build link opens Buildbot's build page, in the UI.
    build = ui_farm.builds["hello"]
    hello.locator("a.build").click()
    page.wait_for_url(f"**/#/builders/{build['builderid']}/builds/{build['number']}",
                      timeout=10_000)


def test_releases_is_a_menu_entry_showing_a_release(page, ui_farm, tmp_path):
    menu_entry(page, "Releases").click()
    page.wait_for_url("**/#/releases", timeout=10_000)
    page.locator('tr[data-project="hello"] a').first.click()
    page.get_by_role("heading", name="hello").wait_for(timeout=10_000)
    revision_link = page.locator("tr[data-revision] a").first
    revision = revision_link.inner_text()
    revision_link.click()
    page.wait_for_url(f"**/#/releases/hello/{revision}", timeout=10_000)
    row = page.locator(f'tr[data-target="{HOST_TARGET}"]')
    row.wait_for(timeout=10_000)
    assert page.locator("table.rf-release tbody tr").count() == 1
    target, archive, _, binaries, checksum, signed, rebuilt = (
        cell.inner_text() for cell in row.locator("td").all())
    assert target == HOST_TARGET
    assert binaries.startswith("hello ") and "signature" in signed and rebuilt == "not checked"
    href = row.locator("a.archive").get_attribute("href")
    data = requests.get(ui_farm.url + href, timeout=30).content
    assert data[:2] == b"\x1f\x8b"
    assert hashlib.sha256(data).hexdigest() == checksum
    sums = page.get_by_role("link", name="SHA256SUMS").get_attribute("href")
    assert f"{checksum}  {HOST_TARGET}/{archive}" in \
        requests.get(ui_farm.url + sums, timeout=30).text
    screenshot(page, "ui-release.png", tmp_path)


def test_a_builds_page_links_to_its_release_in_the_ui(page, ui_farm):
    build = ui_farm.builds["hello"]
    [with_props] = ui_farm.api(f"builds/{build['buildid']}", property="revision_label")["builds"]
    revision = with_props["properties"]["revision_label"][0]
    [ui_url] = [u for u in ui_farm.artifact_urls(build) if "#/releases/" in u]
    assert ui_url == f"{ui_farm.url}#/releases/hello/{revision}"
    page.goto(ui_farm.url + f"#/builders/{build['builderid']}/builds/{build['number']}")
    link = page.locator(f'a[href="{ui_url}"]').first
    link.wait_for(timeout=30_000)
    # Buildbot opens a step's links in a new tab.
    with page.context.expect_page() as opened:
        link.click()
    release = opened.value
    release.locator(f'tr[data-target="{HOST_TARGET}"] a.archive').wait_for(timeout=30_000)
    assert release.url == ui_url


def test_the_old_pages_still_answer(ui_farm):
    moved = requests.get(ui_farm.url + "plugins/matrix/", allow_redirects=False, timeout=30)
    assert (moved.status_code, moved.headers["Location"]) == (302, "../../#/targets")
    assert requests.get(ui_farm.url + "plugins/matrix/data.json", timeout=30).json()["cells"]
    assert "hello" in requests.get(ui_farm.url + "plugins/artifacts/", timeout=30).text
    projects = requests.get(ui_farm.url + "plugins/artifacts/index.json", timeout=30).json()
    found = {p["name"]: p for p in projects["projects"]}
    assert found["hello"]["releases"] == 1 and found["hello"]["latest"]
    assert found.get("broken", {"latest": None})["latest"] is None
