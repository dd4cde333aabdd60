"""The farm's pages of Buildbot's web UI (master/www_plugin/): the shipped bundle is
what the source makes, the matrix plugin serves it, builds link to their release in
the UI. The pages themselves are tested in Chromium (tests/ui/test_www_plugin_in_browser.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.docker_engine import unavailable

from rustfarm.master.matrix_www import MatrixPlugin, matrix
from rustfarm.master.steps import ui_release_url

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "master" / "static" / "ui"


def test_the_shipped_bundle_is_what_the_source_makes():
    if not shutil.which("npm"):
        unavailable("npm is not installed (tests/run installs it when root)")
    # Installs the pinned npm packages first when they are not (npm ci).
    done = subprocess.run([str(REPO / "tools" / "build-www"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_matrix_plugin_serves_the_bundle_as_its_ui_files():
    plugin = MatrixPlugin()
    plugin.setConfiguration({"url": "http://farm/", "projects": {}, "targets": {}})
    for name in ("scripts.js", "styles.css"):
        served = plugin.resource.children[name.encode()]
        assert served.data == (BUNDLE / name).read_bytes() and served.data
    assert b"buildbotSetupPlugin" not in (BUNDLE / "styles.css").read_bytes()
    assert b"BuildbotPluginSupport" in (BUNDLE / "scripts.js").read_bytes()


def test_a_release_s_page_in_the_ui():
    assert ui_release_url("http://farm:8010/plugins/artifacts/hello/1.2.0-abc/") == \
        "http://farm:8010/#/releases/hello/1.2.0-abc"
    assert ui_release_url("http://farm:8010/plugins/artifacts/") is None
    assert ui_release_url("http://farm:8010/other/") is None


def test_a_matrix_cell_links_to_its_release_in_the_ui():
    config = {"url": "http://farm/", "projects": {"hello": ["t"]},
              "targets": {"t": {"arch": "x86_64", "pool": "local"}}}
    builds = {"hello:t": {"result": "success", "number": 3, "builderid": 2, "complete_at": 1,
                          "started_at": 0, "summary": "", "properties": {
                              "revision_label": "0.1.0-abc", "got_revision": "abc"}}}
    cell = matrix(config, builds)["cells"]["hello t"]
    assert cell["release_page"] == "http://farm/#/releases/hello/0.1.0-abc"
    assert cell["release_url"] == "http://farm/plugins/artifacts/hello/0.1.0-abc/"
