"""One page per release and a target matrix: what a revision's builds produced, at
stable URLs, with checksums that match the files."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile

import pytest
import requests

from tests.support.crates import broken_crate
from tests.support.farm import EXAMPLE, RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET, require_cargo

# The host has no std for it: its builds fail, so a revision is never complete.
UNBUILDABLE = "i686-unknown-linux-gnu"


@pytest.fixture(scope="module")
def release_farm(tmp_path_factory):
    require_cargo()
    broken = broken_crate(tmp_path_factory.mktemp("broken"))
    grows = tmp_path_factory.mktemp("grows") / "hello"
    shutil.copytree(EXAMPLE, grows, ignore=shutil.ignore_patterns("target"))
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(f"""\
  hello: {{source: {EXAMPLE}, binaries: [hello], targets: [{HOST_TARGET}]}}
  half: {{source: {EXAMPLE}, binaries: [hello], test: false}}
  broken: {{source: {broken}, targets: [{HOST_TARGET}]}}
  grows: {{source: {grows}, binaries: [hello], targets: [{HOST_TARGET}], test: false}}
""", targets=f"""\
  {HOST_TARGET}: {{pool: local, runner: native}}
  {UNBUILDABLE}: {{pool: local}}
"""))
    farm.up()
    farm.grows = grows
    try:
        farm.login()
        builds = {}
        for project in ("hello", "half", "broken"):
            for builder, brid in farm.force(f"force-{project}").items():
                builds[builder] = farm.wait_for_build(brid, timeout=300)
        yield farm, builds
    finally:
        farm.down()


def get(farm: RunningFarm, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{farm.url}plugins/{path}", timeout=60, **kwargs)


def revision_of(farm: RunningFarm, build: dict) -> str:
    props = farm.api(f"builds/{build['buildid']}", property="revision_label")
    return props["builds"][0]["properties"]["revision_label"][0]


def test_a_release_page_lists_every_target_with_matching_checksums(release_farm):
    farm, builds = release_farm
    build = builds[f"hello:{HOST_TARGET}"]
    assert build["results"] == 0
    rev = revision_of(farm, build)
    archive = f"hello-{rev}-{HOST_TARGET}.tar.gz"

    page = get(farm, f"artifacts/hello/{rev}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    data = get(farm, f"artifacts/hello/{rev}/{HOST_TARGET}/{archive}").content
    digest = hashlib.sha256(data).hexdigest()
    assert HOST_TARGET in page.text and archive in page.text and digest in page.text

    sums = get(farm, f"artifacts/hello/{rev}/SHA256SUMS").text
    assert sums == f"{digest}  {HOST_TARGET}/{archive}\n"

    everything = get(farm, f"artifacts/hello/{rev}/hello-{rev}-all.tar.gz")
    assert everything.status_code == 200 and "content-encoding" not in everything.headers
    assert everything.content[:2] == b"\x1f\x8b"          # as stored: gzip's bytes
    with tarfile.open(fileobj=io.BytesIO(everything.content)) as tar:
        assert tar.getnames() == ["SHA256SUMS", f"{HOST_TARGET}/{archive}"]
        assert tar.extractfile("SHA256SUMS").read().decode() == sums
        assert hashlib.sha256(tar.extractfile(f"{HOST_TARGET}/{archive}").read()
                              ).hexdigest() == digest
    # Asked again, the same bytes (made once, reproducible).
    assert get(farm, f"artifacts/hello/{rev}/hello-{rev}-all.tar.gz").content \
        == everything.content
    assert get(farm, f"artifacts/hello/{rev}/.all/").status_code == 404

    # The build links to its release page, and to the release in the web UI.
    assert f"{farm.url}plugins/artifacts/hello/{rev}/" in farm.artifact_urls(build)
    assert f"{farm.url}#/releases/hello/{rev}" in farm.artifact_urls(build)

    # The page's data, for the web UI: the same archives and checksums, paths
    # relative to the page; a directory that is no release has none.
    listed = get(farm, f"artifacts/hello/{rev}/index.json")
    assert listed.headers["content-type"] == "application/json"
    release = listed.json()
    assert (release["project"], release["revision"], release["missing"]) == ("hello", rev, [])
    assert "".join(f"{a['sha256']}  {a['path']}\n" for a in release["archives"]) == sums
    assert release["all"] == f"hello-{rev}-all.tar.gz" and release["sums"] == "SHA256SUMS"
    assert get(farm, "artifacts/hello/no-such-revision/index.json").status_code == 404


def test_latest_is_the_newest_revision_built_for_every_target(release_farm):
    farm, builds = release_farm
    rev = revision_of(farm, builds[f"hello:{HOST_TARGET}"])
    moved = get(farm, "artifacts/hello/latest/SHA256SUMS", allow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["location"] == f"../{rev}/SHA256SUMS"
    assert get(farm, "artifacts/hello/latest/SHA256SUMS").text \
        == get(farm, f"artifacts/hello/{rev}/SHA256SUMS").text
    assert get(farm, "artifacts/hello/latest/").url == f"{farm.url}plugins/artifacts/hello/{rev}/"

    # half's i686 build failed: its revision has the host's archive only.
    assert builds[f"half:{UNBUILDABLE}"]["results"] == 2
    half_rev = revision_of(farm, builds[f"half:{HOST_TARGET}"])
    none_yet = get(farm, "artifacts/half/latest/")
    assert none_yet.status_code == 404
    assert "no revision of half has been built for every one of its targets" in none_yet.text
    listing = get(farm, "artifacts/half/").text
    assert half_rev in listing and "1 of 2 targets" in listing
    assert f"Not built for: {UNBUILDABLE}" in get(farm, f"artifacts/half/{half_rev}/").text


def test_the_matrix_data_has_a_cell_per_project_and_target(release_farm):
    farm, builds = release_farm
    data = get(farm, "matrix/data.json").json()
    assert data["projects"] == {"hello": [HOST_TARGET], "half": [HOST_TARGET, UNBUILDABLE],
                                "broken": [HOST_TARGET], "grows": [HOST_TARGET]}
    assert data["targets"][UNBUILDABLE] == {"arch": "i686", "pool": "local"}
    hello = data["cells"][f"hello {HOST_TARGET}"]
    rev = revision_of(farm, builds[f"hello:{HOST_TARGET}"])
    assert hello["result"] == "success" and hello["revision"] == rev
    assert hello["size"] > 100_000
    binary = requests.get(hello["download_url"], timeout=60)
    assert binary.status_code == 200 and binary.content[:2] == b"\x1f\x8b"
    assert data["cells"][f"broken {HOST_TARGET}"]["result"] == "failure"
    assert "download_url" not in data["cells"][f"broken {HOST_TARGET}"]
    assert data["cells"][f"half {UNBUILDABLE}"]["result"] == "failure"
    page = get(farm, "matrix/", allow_redirects=False)
    assert (page.status_code, page.headers["Location"]) == (302, "../../#/targets")


def test_a_release_page_gives_each_binary_s_size_against_the_previous_release(release_farm):
    farm, _ = release_farm
    [first] = [farm.wait_for_build(b) for b in farm.force("force-grows").values()]
    main = farm.grows / "src" / "main.rs"
    # 64 KiB more of data in the binary.
    main.write_text(main.read_text() + '\n#[used]\nstatic PADDING: [u8; 65536] = [7; 65536];\n')
    [second] = [farm.wait_for_build(b) for b in farm.force("force-grows").values()]
    assert first["results"] == second["results"] == 0
    old, new = revision_of(farm, first), revision_of(farm, second)
    assert old != new
    page = get(farm, f"artifacts/grows/{new}/").text
    assert f"binaries (against {old})" in page
    grown = re.search(r"hello [0-9.]+ [KM]B <span[^>]*>\(\+([0-9.]+) KB\)</span>", page)
    assert grown, page
    assert 60 <= float(grown.group(1)) <= 70
