"""A pull request's build on a farm whose artifact store is an S3 bucket (moto's server
standing in for S3), built in a container of the real worker image: its files are
published under the project's pr-<number>/ in the bucket, never as a release, and
served from there (the binary runs under qemu); closing the request removes them from
the bucket, and nothing is left on the master's disk."""

from __future__ import annotations

import shutil

import boto3
import pytest
from buildbot.process.results import SUCCESS

from tests.support.binaries import run_downloaded
from tests.support.crates import write_crate
from tests.support.farm import RunningFarm
from tests.support.git_repos import PushedRepository, git
from tests.support.moto_server import MotoEc2

from .conftest import TARGETS, up_for_the_module
from .test_pull_requests import LABEL, TARGET, TOKENS, finished, main_rs, send

pytestmark = [pytest.mark.docker, pytest.mark.slow]

POOL = "prs3"
BUCKET = "releases"
NUMBER = 7


@pytest.fixture(scope="module")
def s3_pulls(built_chain, tmp_path_factory, forge_api):
    moto = MotoEc2().start()
    bucket = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket.create_bucket(Bucket=BUCKET)
    root = tmp_path_factory.mktemp("s3pulls")
    crate = write_crate(root / "crate", "hello", main_rs("hello from main"))
    repo = PushedRepository(root / "git", "hello", crate)
    ref = f"refs/pull/{NUMBER}/head"
    git(repo.work, "checkout", "-q", "-b", f"pull-{NUMBER}", "main")
    head = repo.commit("src/main.rs", main_rs(f"hello from request {NUMBER}"), ref)
    git(repo.work, "push", "-q", "origin", f"HEAD:{ref}")
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 1, memory: 2g, standby: 0}}
targets:
  {TARGET}: {{pool: {POOL}, image: "{built_chain.reference(TARGET)}"}}
projects:
  hub:
    source: {repo.url}
    poll_interval: 0
    test: false
    forge: {{kind: github, repository: acme/hub, api_url: "{forge_api.url}",
             pull_requests: {{label: "{LABEL}"}}}}
artifacts:
  s3: {{bucket: {BUCKET}, prefix: farm/, endpoint_url: '{moto.endpoint}'}}
""")
    farm.farm("artifacts-credentials", input="testing\ntesting\n")
    farm.farm("forge-token", "hub", input=TOKENS["hub"] + "\n")
    farm.secrets = {"hub": farm.farm("webhook-secret", "hub").stdout.strip()}
    farm.bucket, farm.head = bucket, head

    def stop_moto():
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)

    yield from up_for_the_module(farm, POOL, cleanup=stop_moto)


def keys(farm, prefix: str = "farm/") -> list[str]:
    listed = farm.bucket.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def files_on_disk(farm) -> list[str]:
    return [str(p) for where in ("staging", "artifacts")
            for p in (farm.state / where).rglob("*") if p.is_file()]


def test_a_request_s_files_are_served_from_the_bucket_until_it_closes(s3_pulls, tmp_path):
    farm = s3_pulls
    assert send(farm, "github", "hub", NUMBER, farm.head, "opened",
                from_fork=False) == "1 change found"
    build = finished(farm, "hub", farm.head)
    assert build["results"] == SUCCESS, farm.all_logs(build)[-3000:]
    place = f"farm/hub/pr-{NUMBER}/{TARGET}/"
    stored = keys(farm)
    assert any(k.startswith(place) and k.endswith(".tar.gz") for k in stored), stored
    # Never a release: nothing of the project's outside its pr-<number>/.
    assert [k for k in stored if not k.startswith(f"farm/hub/pr-{NUMBER}/")] == []
    assert files_on_disk(farm) == []
    [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    assert f"/hub/pr-{NUMBER}/" in archive
    ran = run_downloaded(archive, tmp_path / "got", "hello", TARGETS[TARGET])
    assert f"hello from request {NUMBER}" in ran

    assert send(farm, "github", "hub", NUMBER, farm.head, "closed",
                from_fork=False) == "no change found"
    assert keys(farm) == []
    assert files_on_disk(farm) == []
