"""EC2 end to end: a real master with an ec2 pool, moto as EC2, the real boot script,
the real Docker engine pulling the worker image from a real local registry."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from rustfarm.cli.processes import process_alive
from rustfarm.targets import target_table
from rustfarm.userdata import parse_user_data
from tests.support.binaries import embedded_crates, run_downloaded
from tests.support.crates import renamed_copy, write_crate
from tests.support.crates_io import require_crates_io
from tests.support.farm import EXAMPLE, RunningFarm, wait_until
from tests.support.forge_payloads import pull_request_payload, signed_headers
from tests.support.git_repos import PushedRepository, git
from tests.support.moto_server import MotoEc2, aws_env

from .player import InstancePlayer

pytestmark = pytest.mark.docker

HOST_TARGET = "x86_64-unknown-linux-gnu"
TARGETS = {t.triple: t for t in target_table()}


@pytest.fixture(scope="module")
def moto():
    server = MotoEc2().start()
    with aws_env(server.endpoint):
        yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed_image(built_chain, registry):
    """The host target's worker image in the registry, and not tagged locally under
    the registry's name, so the boot script really pulls it."""
    local = built_chain.reference(HOST_TARGET)
    remote = f"{registry.address}/{local}"
    subprocess.run(["docker", "tag", local, remote], check=True)
    subprocess.run(["docker", "push", "-q", remote], check=True, capture_output=True)
    subprocess.run(["docker", "rmi", remote], check=True, capture_output=True)
    return local


@pytest.fixture(scope="module")
def silent_image(registry, tmp_path_factory) -> str:
    """A worker image whose process runs but never reaches the master."""
    from tests.ami.harness import build_tiny_worker_image
    reference = build_tiny_worker_image(registry.address, tmp_path_factory.mktemp("busybox"),
                                        hold_seconds=900)
    return reference.removeprefix(f"{registry.address}/")


REGION = "us-east-1"


def base_ami(moto) -> str:
    return moto.client(REGION).describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


def ec2_farm(directory, moto, registry, image: str, projects: dict | None = None,
             **pool) -> RunningFarm:
    settings = {"kind": "ec2", "region": "us-east-1", "ami": base_ami(moto),
                "instance_type": "t3.micro", "max_instances": 1,
                "image_registry": registry.address, "connect_timeout": 120, **pool}
    pool_yaml = ", ".join(f"{k}: {v}" for k, v in settings.items())
    projects = projects or {"hello": f"{{source: {EXAMPLE}}}"}
    farm = RunningFarm(directory, f"""\
schedule: {{nightly: false}}
workers:
  cloud: {{{pool_yaml}}}
targets:
  {HOST_TARGET}: {{pool: cloud, runner: native, image: "{image}"}}
projects:
""" + "".join(f"  {name}: {body}\n" for name, body in projects.items()))
    text = farm.config.read_text().replace("  name: test\n",
                                           "  name: test\n  master_address: 127.0.0.1\n"
                                           "  worker_host: 127.0.0.1\n")
    farm.config.write_text(text)
    return farm


def instances(moto) -> list[dict]:
    reply = moto.client(REGION).describe_instances(
        Filters=[{"Name": "tag:rustfarm:farm", "Values": ["test"]}])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def wait_for(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout, f"no {what}")


def test_force_build_boots_an_instance_that_builds_and_is_terminated(
        moto, registry, pushed_image, tmp_path):
    moto.reset()
    farm = ec2_farm(tmp_path / "farm", moto, registry, pushed_image)
    with InstancePlayer(moto, "test", tmp_path / "instances") as player:
        farm.up()
        try:
            farm.login()
            [brid] = farm.force("force-hello").values()
            build = farm.wait_for_build(brid, timeout=600)
            assert build["results"] == 0, farm.step_log(build, "cargo build")[-2000:]

            [launch] = moto.calls("RunInstances")
            assert launch["ImageId"] == base_ami(moto)
            assert launch["InstanceType"] == "t3.micro"
            assert launch["MetadataOptions.HttpTokens"] == "required"
            tags = {launch[k]: launch[k.replace(".Key", ".Value")]
                    for k in launch if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")}
            assert tags["rustfarm:farm"] == "test" and tags["rustfarm:pool"] == "cloud"
            assert tags["rustfarm:worker"] == "cloud-1"

            [instance_id] = player.booted
            fields = parse_user_data(player.user_data[instance_id])
            assert fields.image == f"{registry.address}/{pushed_image}"
            assert (fields.master, fields.port) == ("127.0.0.1", farm.worker_port)
            assert fields.name == "cloud-1"
            password = (farm.state / "secrets" / "worker-cloud-1").read_text().strip()
            assert fields.password == password

            wait_for(lambda: player.state(instance_id) == "terminated", 120,
                     "the instance to be terminated")
            container = f"rustfarm-ec2test-{instance_id}"
            wait_for(lambda: not subprocess.run(["docker", "ps", "-aq", "-f", f"name={container}"],
                                                capture_output=True, text=True).stdout.strip(),
                     60, "the worker container to be gone")
            assert "pull" in player.booted[instance_id].output.lower()
            log = (farm.state / "master" / "twistd.log").read_text()
            assert password not in log
            props = farm.api(f"builds/{build['buildid']}", property="*")["builds"][0]["properties"]
            assert password not in str(props)
        finally:
            farm.down()


def test_an_instance_is_sent_the_crates_it_needs_from_the_farm_s_store(
        moto, registry, pushed_image, tmp_path):
    """An instance cannot see the crate store: the master sends it the entries of a
    project's crates.io dependencies, and the build runs without network."""
    require_crates_io()
    moto.reset()
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "crates" / "deps-demo"
    farm = ec2_farm(tmp_path / "farm", moto, registry, pushed_image,
                    projects={"deps": f"{{source: {fixture}, test: false}}"})
    with InstancePlayer(moto, "test", tmp_path / "instances"):
        farm.up()
        try:
            farm.login()
            [brid] = farm.force("force-deps").values()
            build = farm.wait_for_build(brid, timeout=600)
            assert build["results"] == 0, (farm.step_log(build, "dependencies") or "")[-2000:]
            props = farm.api(f"builds/{build['buildid']}", property="dependencies")["builds"][0]
            facts = props["properties"]["dependencies"][0]
            assert facts["crates"] >= 8 and facts["sent"] == facts["crates"], facts
            [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
            target = TARGETS[HOST_TARGET]
            assert run_downloaded(archive, tmp_path / "deps", "deps-demo", target).startswith(
                "deps-demo on x86_64: mipsel-unknown-linux-gnu")
        finally:
            farm.down()


def test_worker_that_never_connects_is_terminated_and_the_build_retried(
        moto, registry, silent_image, tmp_path):
    moto.reset()
    farm = ec2_farm(tmp_path / "farm", moto, registry, silent_image, connect_timeout=15)
    with InstancePlayer(moto, "test", tmp_path / "instances"):
        farm.up()
        try:
            farm.login()
            started = time.monotonic()
            [brid] = farm.force("force-hello").values()
            first = wait_for(lambda: instances(moto), 60, "an instance to be launched")[0]
            wait_for(lambda: any(i["InstanceId"] == first["InstanceId"] and
                                 i["State"]["Name"] == "terminated" for i in instances(moto)),
                     120, "the silent instance to be terminated")
            assert time.monotonic() - started < 90, "noticed within minutes, not the hour"
            wait_for(lambda: len(moto.calls("RunInstances")) >= 2, 120, "the build to be retried")
            builds = farm.api("builds", buildrequestid=brid)["builds"]
            assert builds and builds[0]["results"] == 5      # RETRY
            farm.session.post(f"{farm.url}api/v2/buildrequests/{brid}", json={
                "jsonrpc": "2.0", "id": 1, "method": "cancel", "params": {"reason": "test"}},
                timeout=30)
        finally:
            farm.down()
        wait_for(lambda: all(i["State"]["Name"] == "terminated" for i in instances(moto)), 120,
                 "every instance to be terminated after the master stopped")


def test_spot_not_fulfilled_fails_clearly_and_leaves_nothing_running(
        moto, registry, pushed_image, tmp_path):
    moto.reset()
    moto.refuse_spot("cloud-1")
    farm = ec2_farm(tmp_path / "farm", moto, registry, pushed_image, spot="true",
                    spot_fallback="fail")
    farm.up()
    try:
        farm.login()
        [brid] = farm.force("force-hello").values()
        build = farm.wait_for_build(brid, timeout=120)
        assert build["results"] in (2, 4)
        assert "spot" in str(build["state_string"]).lower() or any(
            "spot" in s["state_string"].lower() for s in farm.steps(build)) or \
            "Spot" in (farm.state / "master" / "twistd.log").read_text()
        assert [i for i in instances(moto) if i["State"]["Name"] != "terminated"] == []
    finally:
        farm.down()


def test_orphan_left_by_a_crashed_master_is_reaped_at_start(
        moto, registry, silent_image, tmp_path):
    moto.reset()
    farm = ec2_farm(tmp_path / "farm", moto, registry, silent_image, connect_timeout=600)
    farm.up()
    try:
        farm.login()
        farm.force("force-hello")
        orphan = wait_for(lambda: [i for i in instances(moto) if i["State"]["Name"] == "running"],
                          60, "an instance to run")[0]["InstanceId"]
        pid = int((farm.state / "master" / "twistd.pid").read_text())
        os.kill(pid, signal.SIGKILL)          # a crash: no clean-up
        wait_for(lambda: not process_alive(pid), 30, "the master to die")
        (farm.state / "master" / "twistd.pid").unlink()
        farm.up()
        wait_for(lambda: any(i["InstanceId"] == orphan and i["State"]["Name"] == "terminated"
                             for i in instances(moto)), 120, "the reaper to terminate the orphan")
        log = (farm.state / "master" / "twistd.log").read_text()
        assert f"terminating orphan instance {orphan}" in log
    finally:
        farm.down()


CACHE_RELAY = Path(__file__).resolve().parents[2] / "ami" / "rustfarm-cache-relay"


def alter_one_object(s3, bucket: str, prefix: str) -> str:
    """One crate copy in the bucket with a byte of a source file changed: its key."""
    key = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
                 ["Contents"])[0]
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    changed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as source, \
            tarfile.open(fileobj=changed, mode="w:gz") as tar:
        done = False
        for member in source:
            content = source.extractfile(member).read() if member.isfile() else None
            if content is not None and member.name.endswith(".rs") and not done:
                content, done = content + b"\n", True
                member.size = len(content)
            tar.addfile(member, io.BytesIO(content) if content is not None else None)
    s3.put_object(Bucket=bucket, Key=key, Body=changed.getvalue())
    return key.removeprefix(prefix).rsplit("/", 1)[0]


def test_instances_share_compiled_crates_through_s3_without_credentials_in_builds(
        moto, registry, pushed_image, tmp_path):
    """Two projects with the same dependencies, each built on a fresh instance: the
    second takes every dependency crate from the pool's S3 compile cache, which the
    instance's relay (with the instance's credentials, outside the container) serves.
    The second is built with cargo auditable, whose wrapper sccache is not given. The
    second instance takes its crate copies from the pool's bucket, where the first put
    those the master sent it; one altered there is refused, and only that one is sent
    by the master."""
    moto.reset()
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name=REGION)
    s3.create_bucket(Bucket="farm-cache")
    crates = {name: renamed_copy("deps-demo", tmp_path, name) for name in ("first", "second")}
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    farm = ec2_farm(tmp_path / "farm", moto, registry, pushed_image, projects={
        name: f"{{source: {path}, binaries: [{name}], test: false, "
              f"auditable: {'true' if name == 'second' else 'false'}}}"
        for name, path in crates.items()},
        compile_cache=f"{{bucket: farm-cache, prefix: test/, endpoint_url: '{moto.endpoint}'}}")
    # The relay needs botocore, which this Python has (an instance has Debian's).
    relay = {"RUSTFARM_CACHE_RELAY": f"{sys.executable} {CACHE_RELAY}"}
    with InstancePlayer(moto, "test", tmp_path / "instances", boot_env=relay) as player:
        farm.up()
        try:
            farm.login()
            counts, dependencies = {}, {}
            for name in crates:
                if name == "second":
                    altered = alter_one_object(s3, "farm-cache", "test/crates/")
                [brid] = farm.force(f"force-{name}").values()
                build = farm.wait_for_build(brid, timeout=600)
                assert build["results"] == 0, farm.step_log(build, "cargo build")[-3000:]
                props = farm.api(f"builds/{build['buildid']}", property="*")["builds"][0]
                counts[name] = props["properties"]["compile_cache"][0]
                dependencies[name] = props["properties"]["dependencies"][0]
                # Every crate through sccache (no target directory to keep), pipelined.
                assert props["properties"]["rustc_wrapper"][0].endswith("/sccache-pipelined.sh")
                assert "AWS_" not in str(props["properties"]) and "testing" not in str(props)
                [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
                run_downloaded(archive, tmp_path / name, name, TARGETS[HOST_TARGET])
                embedded = embedded_crates(pushed_image, tmp_path / name / name)
                assert (embedded is not None) == (name == "second"), embedded
            assert counts["first"]["misses"] >= 8 and counts["first"]["errors"] == 0
            assert counts["second"]["hits"] >= 8 and counts["second"]["misses"] == 0
            crates_count = dependencies["first"]["crates"]
            assert (dependencies["first"]["sent"], dependencies["first"]["from_pool"]) == (
                crates_count, 0)
            assert (dependencies["second"]["sent"], dependencies["second"]["from_pool"]) == (
                1, crates_count - 1)
            log = farm.step_log(build, "dependencies")
            assert f"not taken from the pool's bucket: {altered}" in log, log
            shared = [o["Key"] for o in s3.list_objects_v2(
                Bucket="farm-cache", Prefix="test/crates/")["Contents"]]
            assert len(shared) == crates_count and all(k.endswith(".tar.gz") for k in shared)
            stored = [o["Key"] for o in s3.list_objects_v2(Bucket="farm-cache")["Contents"]]
            assert all(key.startswith("test/") for key in stored)
            assert len(stored) >= 8
            assert len(player.booted) == 2
            for text in player.user_data.values():
                fields = parse_user_data(text)
                assert (fields.cache_bucket, fields.cache_prefix, fields.cache_region) \
                    == ("farm-cache", "test/", REGION)
                assert not fields.cache_read_only
        finally:
            farm.down()


def test_a_pull_request_builds_on_an_instance_of_its_own_that_only_reads_the_cache(
        moto, registry, pushed_image, forge_api, tmp_path):
    """A pull request of the repository itself, announced by GitHub's webhook, builds
    on an ec2 pool as anyone's code: its own instance, whose user-data says the compile
    cache is read-only, IMDSv2 with a hop limit of 1, its binary under pr-7/, and the
    instance terminated after."""
    moto.reset()
    boto3.client("s3", endpoint_url=moto.endpoint, region_name=REGION).create_bucket(
        Bucket="farm-cache")
    crate = write_crate(tmp_path / "crate", "hub", 'fn main() {\n    println!("main");\n}\n')
    repo = PushedRepository(tmp_path / "git", "hub", crate)
    git(repo.work, "checkout", "-q", "-b", "request", "main")
    head = repo.commit("src/main.rs", 'fn main() {\n    println!("from a request");\n}\n',
                       "a request")
    git(repo.work, "push", "-q", "origin", "HEAD:refs/pull/7/head")
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    farm = ec2_farm(tmp_path / "farm", moto, registry, pushed_image, projects={
        "hub": f'{{source: "{repo.url}", binaries: [hub], test: false, poll_interval: 0, '
               f'forge: {{kind: github, repository: acme/hub, api_url: "{forge_api.url}", '
               f'statuses: false, pull_requests: {{comment: false}}}}}}'},
        compile_cache=f"{{bucket: farm-cache, prefix: test/, endpoint_url: '{moto.endpoint}'}}")
    secret = farm.farm("webhook-secret", "hub").stdout.strip()
    relay = {"RUSTFARM_CACHE_RELAY": f"{sys.executable} {CACHE_RELAY}"}
    with InstancePlayer(moto, "test", tmp_path / "instances", boot_env=relay) as player:
        farm.up()
        try:
            body, event = pull_request_payload("github", "acme/hub", 7, head, "opened",
                                               from_fork=False)
            reply = requests.post(f"{farm.url}change_hook/github", data=body, timeout=30,
                                  headers=signed_headers("github", secret, body, event))
            assert (reply.status_code, reply.text) == (200, "1 change found")
            [builder] = [b for b in farm.api("builders")["builders"]
                         if b["name"] == f"hub:{HOST_TARGET}"]

            def finished():
                builds = farm.api("builds", builderid=builder["builderid"],
                                  property="*")["builds"]
                return builds[0] if builds and builds[0]["complete"] else None
            build = wait_for(finished, 600, "finished build of the request")
            assert build["results"] == 0, farm.all_logs(build)[-3000:]
            assert build["properties"]["got_revision"][0] == head
            [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
            assert f"/plugins/artifacts/hub/pr-7/{HOST_TARGET}/" in archive
            target = TARGETS[HOST_TARGET]
            assert run_downloaded(archive, tmp_path / "run", "hub", target).strip() == \
                "from a request"
            [text] = player.user_data.values()
            assert parse_user_data(text).cache_read_only
            [instance] = instances(moto)
            assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
            wait_for(lambda: all(i["State"]["Name"] == "terminated" for i in instances(moto)),
                     120, "terminated instance")
        finally:
            farm.down()
