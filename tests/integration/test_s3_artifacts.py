"""An artifact store in an S3 bucket (moto's server standing in for S3): a build's
release is published to the bucket, its pages, downloads, latest/ and `farm verify`
work as with a directory, retention removes an old revision's objects, and nothing is
written to a local artifacts directory."""

from __future__ import annotations

import hashlib
import shutil

import boto3
import pytest
import requests

from tests.support.farm import EXAMPLE, RunningFarm, local_farm_yaml
from tests.support.moto_server import MotoEc2

from .conftest import HOST_TARGET, require_cargo

BUCKET = "releases"


@pytest.fixture(scope="module")
def moto():
    server = MotoEc2().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3_farm(moto, tmp_path_factory):
    require_cargo()
    bucket = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket.create_bucket(Bucket=BUCKET)
    source = tmp_path_factory.mktemp("src") / "hello"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("target"))
    farm = RunningFarm(tmp_path_factory.mktemp("s3farm"), local_farm_yaml(
        f"  hello: {{source: {source}, binaries: [hello], test: false}}\n")
        + f"artifacts:\n  keep: 1\n  s3: {{bucket: {BUCKET}, prefix: farm/, "
          f"endpoint_url: '{moto.endpoint}'}}\n")
    farm.farm("artifacts-credentials", input="testing\ntesting\n")
    farm.up()
    farm.source, farm.bucket = source, bucket
    try:
        yield farm
    finally:
        farm.down()


def keys_of(farm) -> list[str]:
    listed = farm.bucket.list_objects_v2(Bucket=BUCKET, Prefix="farm/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def build(farm) -> dict:
    farm.login()
    [brid] = farm.force("force-hello").values()
    result = farm.wait_for_build(brid)
    assert result["results"] == 0, [(s["name"], s["state_string"]) for s in farm.steps(result)]
    return result


def label_of(farm, result) -> str:
    return farm.api(f"builds/{result['buildid']}", property="revision_label")[
        "builds"][0]["properties"]["revision_label"][0]


def test_a_release_in_a_bucket_is_listed_downloaded_verified_and_pruned(s3_farm, tmp_path):
    farm = s3_farm
    first = build(farm)
    rev = label_of(farm, first)
    steps = {s["name"]: s for s in farm.steps(first)}
    assert steps["publish"]["state_string"].startswith("published ")
    target = f"farm/hello/{rev}/{HOST_TARGET}/"
    archive = f"hello-{rev}-{HOST_TARGET}.tar.gz"
    assert {target + archive, target + "SHA256SUMS", target + "SHA256SUMS.minisig",
            target + "provenance.intoto.json", target + "sbom.cdx.json"} <= set(keys_of(farm))
    # Nothing was left on the master's disk: no artifacts directory, no staged files.
    assert not [p for p in (farm.state / "artifacts").rglob("*") if p.is_file()]
    assert not [p for p in (farm.state / "staging").rglob("*") if p.is_file()]

    base = f"{farm.url}plugins/artifacts/"
    page = requests.get(f"{base}hello/{rev}/", timeout=30)
    assert page.status_code == 200 and archive in page.text and "signature" in page.text
    assert rev in requests.get(f"{base}hello/", timeout=30).text
    assert "hello" in requests.get(base, timeout=30).text
    # A download is the object itself, through a presigned link, as it is stored.
    download = requests.get(f"{base}hello/{rev}/{HOST_TARGET}/{archive}", timeout=30)
    assert download.status_code == 200 and download.history[0].status_code == 302
    assert "Signature=" in download.url or "X-Amz-Signature=" in download.url
    assert "content-encoding" not in download.headers
    sums = requests.get(f"{base}hello/{rev}/SHA256SUMS", timeout=30).text
    assert sums == f"{hashlib.sha256(download.content).hexdigest()}  {HOST_TARGET}/{archive}\n"
    latest = requests.get(f"{base}hello/latest/SHA256SUMS", timeout=30)
    assert latest.text == sums
    everything = requests.get(f"{base}hello/{rev}/hello-{rev}-all.tar.gz", timeout=30)
    assert everything.status_code == 200 and everything.content[:2] == b"\x1f\x8b"
    # The data the web UI's Releases pages show, from the bucket as the pages are.
    data = requests.get(f"{base}hello/{rev}/index.json", timeout=30).json()
    [entry] = data["archives"]
    assert entry["path"] == f"{HOST_TARGET}/{archive}" and entry["signed"]
    assert sums == f"{entry['sha256']}  {entry['path']}\n"
    assert [r["revision"] for r in
            requests.get(f"{base}hello/index.json", timeout=30).json()["releases"]] == [rev]
    assert [p["name"] for p in requests.get(f"{base}index.json", timeout=30).json()[
        "projects"]] == ["hello"]
    keys = tmp_path / "keys.pub"
    keys.write_text(requests.get(f"{base}release-keys.pub", timeout=30).text)
    verified = farm.farm("verify", f"{base}hello/{rev}/", "--key", str(keys))
    assert f"verified {HOST_TARGET}: " in verified.stdout

    # A new revision; keep: 1 removes the first one's objects.
    main = farm.source / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// another revision\n")
    second = build(farm)
    assert label_of(farm, second) != rev
    assert not [k for k in keys_of(farm) if k.startswith(f"farm/hello/{rev}/")]
    assert requests.get(f"{base}hello/{rev}/", timeout=30).status_code == 404
