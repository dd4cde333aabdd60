"""Every way a build starts (the builder's force button, the project's form, a pushed
commit through the poller, the nightly scheduler, a rebuild, an upload) builds the
project of its builder: two projects of one target built at once each use their own
cache volume, ship their archive on their own release page, and ship their own binary.

The nightly scheduler runs at a minute set a little after the farm starts. `farm up`
first clears what builds without a project left (a volume every project shared, an
archive outside every project): the farm starts with one of each.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests

from rustfarm.cli.leftovers import projectless_volume_names, unimaged_cache_volume_name
from rustfarm.farmfile import load
from rustfarm.workers.docker_volumes import (CACHE_VOLUME_PROPERTY, cache_volume_name,
                                             compile_cache_volume_name, upload_volume_name)
from tests.support.binaries import check_artifact, run_downloaded
from tests.support.crates import write_crate
from tests.support.farm import RunningFarm, wait_until
from tests.support.git_repos import PushedRepository

from .conftest import TARGETS, targets_yaml, up_for_the_module
from .test_compile import tar_of

pytestmark = pytest.mark.docker

POOL = "og"
# An image the farm once pinned for TARGET.
OLD_IMAGE = "rustfarm/mips-unknown-linux-musl:1.96-000000000000"
TARGET = "mips-unknown-linux-musl"      # static: it runs under the host's qemu-mips
PROJECTS = ("alpha", "beta")
NIGHTLY_SCHEDULERS = {f"nightly-{p}": p for p in PROJECTS}


def main_rs(project: str, marker: str) -> str:
    return f'fn main() {{\n    println!("{project} {marker}");\n}}\n'


def volumes() -> set[str]:
    return set(subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True,
                              text=True, check=True).stdout.split())


def next_nightly_minute(lead: float = 50) -> tuple[int, int]:
    """The local time's minute at least ``lead`` seconds from now."""
    soon = int(time.time() + lead)
    at = time.localtime(soon + 60 - soon % 60)
    return at.tm_hour, at.tm_min


@pytest.fixture(scope="module")
def origins(built_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("origins")
    repos = {}
    for project in PROJECTS:
        crate = write_crate(root / "crates" / project, project, main_rs(project, "first"))
        repos[project] = PushedRepository(root / "git", project, crate)
    hour, minute = next_nightly_minute()
    projects = "".join(f"""\
  {p}:
    source: {repos[p].url}
    branches: [main]
    poll_interval: 2
    targets: [{TARGET}]
    test: false
""" for p in PROJECTS)
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: "{hour:02d}:{minute:02d}"}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 2g}}
targets:
{targets_yaml(built_chain, POOL)}
compile:
  targets: [{TARGET}]
projects:
{projects}""")
    farm.repos = repos
    # Each commit's marker, the text its binary prints after the project's name.
    farm.markers = {repos[p].head(): "first" for p in PROJECTS}
    farm.nightly_at = (hour, minute)
    # What an older farm's nightly builds left: a volume without a project, an
    # archive outside every project; and a project's own release, to be kept.
    leftover_volume = sorted(projectless_volume_names(load(farm.config)))[0]
    # And volumes of images farm.yaml no longer pins: alpha's of an older image, and
    # its and the compile cache's from before an image was part of their names; another
    # farm's volume of the same project and target is not this farm's to remove.
    farm.image = built_chain.reference(TARGET)
    stale = [cache_volume_name("test", "alpha", TARGET, OLD_IMAGE),
             unimaged_cache_volume_name("test", "alpha", TARGET),
             compile_cache_volume_name("test", OLD_IMAGE, TARGET)]
    farm.kept = [cache_volume_name("other", "alpha", TARGET, OLD_IMAGE)]
    for volume in [leftover_volume, *stale, *farm.kept]:
        subprocess.run(["docker", "volume", "create", volume], check=True, capture_output=True)
    farm.stale = stale
    store = farm.state / "artifacts"
    (store / "0123456789ab" / TARGET).mkdir(parents=True)
    (store / "0123456789ab" / TARGET / f"-0123456789ab-{TARGET}.tar.gz").write_bytes(b"x")
    (store / "alpha" / "0123456789ab" / TARGET).mkdir(parents=True)
    own = store / "alpha" / "0123456789ab" / TARGET / f"alpha-0123456789ab-{TARGET}.tar.gz"
    own.write_bytes(b"alpha's own")
    farm.leftovers = (leftover_volume, own)

    def remove_volumes():
        for volume in [*(cache_volume_name("test", p, TARGET, farm.image) for p in PROJECTS),
                       *farm.stale, *farm.kept]:
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)

    yield from up_for_the_module(farm, POOL, cleanup=remove_volumes)


def builder_ids(farm) -> dict[str, int]:
    return {b["name"]: b["builderid"] for b in farm.api("builders")["builders"]}


def check_own_build(farm, build: dict, project: str, tmp_path: Path) -> None:
    """The build succeeded in its project's volume, its archive is on its project's
    release page, and its binary is its project's, of the revision it built."""
    assert build["results"] == 0, farm.step_log(build, "cargo build")[-2000:]
    props = farm.api(f"builds/{build['buildid']}", property="*")["builds"][0]["properties"]
    marker = farm.markers[props["got_revision"][0]]
    assert props[CACHE_VOLUME_PROPERTY][0] == cache_volume_name("test", project, TARGET,
                                                                 farm.image)
    label = props["revision_label"][0]
    [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    release = f"{farm.url}plugins/artifacts/{project}/{label}/"
    assert archive == f"{release}{TARGET}/{project}-{label}-{TARGET}.tar.gz"
    sums = requests.get(f"{release}SHA256SUMS", timeout=30)
    assert sums.status_code == 200 and f"{TARGET}/{project}-{label}-{TARGET}.tar.gz" in sums.text
    out = tmp_path / f"{project}-{build['buildid']}"
    ran = run_downloaded(archive, out, project, TARGETS[TARGET])
    assert ran.strip() == f"{project} {marker}"
    assert not projectless_volume_names(load(farm.config)) & volumes()


def builds_of(farm, brids: dict[str, int]) -> dict[str, dict]:
    return {name: farm.wait_for_build(brid, timeout=600) for name, brid in brids.items()}


def test_farm_up_cleared_what_builds_without_a_project_left(origins):
    volume, own = origins.leftovers
    assert volume not in volumes()
    assert "removed 1 cache volume(s) that builds of several projects shared" in \
        origins.up_output, origins.up_output
    assert "moved 1 archive(s) built without a project" in origins.up_output
    store = origins.state / "artifacts"
    assert not (store / "0123456789ab").exists()
    assert (origins.state / "quarantine" / "projectless-archives" / "0123456789ab" / TARGET /
            f"-0123456789ab-{TARGET}.tar.gz").is_file()
    assert own.read_bytes() == b"alpha's own"


def test_farm_up_removed_the_volumes_of_images_no_longer_pinned(origins):
    assert not set(origins.stale) & volumes()
    assert set(origins.kept) <= volumes()
    # Among them, any that earlier test farms named "test" left with images since re-pinned.
    said = re.search(r"removed (\d+) cache volume\(s\) of images farm.yaml no longer pins: "
                     r"(.*)", origins.up_output)
    assert said, origins.up_output
    assert set(origins.stale) <= set(said.group(2).split(", ")), origins.up_output


def test_the_force_button_and_the_project_form_build_two_projects_at_once(origins, tmp_path):
    origins.login()
    ids = builder_ids(origins)
    # alpha through its builder page's button, beta through its project's form, together.
    brids = {**origins.force("force-alpha-builder", builderid=str(ids[f"alpha:{TARGET}"])),
             **origins.force("force-beta", targets=[TARGET])}
    built = builds_of(origins, brids)
    for project in PROJECTS:
        check_own_build(origins, built[f"{project}:{TARGET}"], project, tmp_path)


def test_pushed_commits_of_two_projects_build_each_its_own(origins, tmp_path):
    ids = builder_ids(origins)
    time.sleep(3)    # the pollers record the current heads first
    pushed = {}
    for project in PROJECTS:
        origins.repos[project].commit("src/main.rs", main_rs(project, "pushed"))
    for project in PROJECTS:
        pushed[project] = origins.repos[project].push()
        origins.markers[pushed[project]] = "pushed"

    def pushed_builds():
        found = {}
        for project in PROJECTS:
            for build in origins.api("builds", builderid=ids[f"{project}:{TARGET}"],
                                     property="got_revision")["builds"]:
                if build["complete"] and \
                        build["properties"].get("got_revision", [None])[0] == pushed[project]:
                    found[project] = build
        return found if len(found) == len(PROJECTS) else None

    found = wait_until(pushed_builds, 300, "the pushed commits were not built")
    for project in PROJECTS:
        check_own_build(origins, found[project], project, tmp_path)


def test_the_nightly_builds_of_two_projects_build_each_its_own(origins, tmp_path):
    ids = builder_ids(origins)
    hour, minute = origins.nightly_at

    def nightly_builds():
        found = {}
        for project in PROJECTS:
            for build in origins.api("builds", builderid=ids[f"{project}:{TARGET}"],
                                     property="scheduler")["builds"]:
                scheduler = build["properties"].get("scheduler", [None])[0]
                if build["complete"] and NIGHTLY_SCHEDULERS.get(scheduler) == project:
                    found[project] = build
        return found if len(found) == len(PROJECTS) else None

    found = wait_until(nightly_builds, 420,
                       f"the nightly builds set for {hour:02d}:{minute:02d} did not run")
    for project in PROJECTS:
        check_own_build(origins, found[project], project, tmp_path)


def test_rebuilds_of_two_projects_build_each_its_own(origins, tmp_path):
    origins.login()
    ids = builder_ids(origins)
    originals = {}
    for project in PROJECTS:
        builds = origins.api("builds", builderid=ids[f"{project}:{TARGET}"], order="-number",
                             limit=1, property="got_revision")["builds"]
        assert builds, f"{project} has no build to rebuild"
        originals[project] = builds[0]
    brids = {}
    for project, build in originals.items():
        # What the web UI's Rebuild button sends.
        body = {"jsonrpc": "2.0", "id": 1, "method": "rebuild", "params": {}}
        reply = origins.session.post(f"{origins.url}api/v2/builds/{build['buildid']}",
                                     json=body, timeout=30,
                                     headers={"Accept": "application/json"})
        assert reply.status_code == 200, reply.text
        _, requests_of_builders = reply.json()["result"]
        [brids[project]] = requests_of_builders.values()
    for project, brid in brids.items():
        rebuilt = origins.wait_for_build(brid, timeout=600)
        revision = originals[project]["properties"]["got_revision"][0]
        props = origins.api(f"builds/{rebuilt['buildid']}",
                            property="got_revision")["builds"][0]["properties"]
        assert props["got_revision"][0] == revision
        check_own_build(origins, rebuilt, project, tmp_path)


def test_uploads_of_two_projects_at_once_each_get_their_own_binary(origins, tmp_path):
    token = origins.farm("token", "admin").stdout.strip()
    replies = {}

    def upload(project: str) -> None:
        crate = write_crate(tmp_path / "up" / project, project, main_rs(project, "uploaded"))
        replies[project] = requests.post(
            f"{origins.url}plugins/compile/jobs", data=tar_of(crate),
            params={"target": TARGET}, timeout=900,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/gzip",
                     "Content-Type": "application/octet-stream"})

    threads = [threading.Thread(target=upload, args=(p,)) for p in PROJECTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = builder_ids(origins)
    builds = origins.api("builds", builderid=ids[f"compile:{TARGET}"],
                         property="*")["builds"]
    assert len(builds) == 2
    jobs = {b["properties"]["crate_name"][0]: b for b in builds}
    for project in PROJECTS:
        reply = replies[project]
        assert reply.status_code == 200, reply.text[-2000:]
        with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
            tar.extractall(tmp_path / project, filter="data")
        binary = tmp_path / project / project
        check_artifact(binary, **TARGETS[TARGET].binary.__dict__)
        ran = subprocess.run([TARGETS[TARGET].qemu, str(binary)], capture_output=True,
                             text=True, timeout=60)
        assert ran.stdout.strip() == f"{project} uploaded"
        props = jobs[project]["properties"]
        assert props[CACHE_VOLUME_PROPERTY][0] == \
            upload_volume_name("test", props["compile_job"][0], TARGET)
    # Their volumes went with their containers.
    wait_until(lambda: not [v for v in volumes() if v.startswith("rustfarm-upload-")], 60,
               "upload volumes were left")
