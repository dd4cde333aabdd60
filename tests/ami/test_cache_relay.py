"""The compile cache relay of an EC2 instance (ami/rustfarm-cache-relay) against moto's
S3: it relays GET, HEAD and PUT of objects under its bucket's prefix, signed with the
instance's credentials, and refuses everything else; sccache in a target image's
container without network, through the worker tool's forwarder and the relay, stores
compiled crates in S3 and a later build in a fresh container takes them from there,
with no credential anywhere in the container."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.crates import renamed_copy
from tests.support.docker_engine import require_docker
from tests.support.moto_server import MotoEc2, aws_environment
from tests.support.worker_tool import tool_in

REPO = Path(__file__).resolve().parents[2]
RELAY = REPO / "ami" / "rustfarm-cache-relay"
BUCKET = "farm-cache"
PREFIX = "farm/sccache/"
REGION = "eu-west-1"
MIPSEL = "mipsel-unknown-linux-gnu"
# Where the container finds the relay's socket, and the loopback port sccache uses.
SOCKET_DIR = "/run/rustfarm-cache"
PORT = 4227


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("relay")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


class Relay:
    def __init__(self, moto: MotoEc2, *options: str):
        self.directory = Path(tempfile.mkdtemp(prefix="rf-relay-"))
        self.socket = self.directory / "relay.sock"
        self.log = self.directory / "relay.log"
        env = aws_environment(None)       # the instance's credentials: only the relay's
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(RELAY), "--socket", str(self.socket), "--bucket", BUCKET,
                 "--prefix", PREFIX, "--region", REGION, "--endpoint-url", moto.endpoint,
                 *options], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the relay did not listen"
            time.sleep(0.05)
        os.chmod(self.directory, 0o755)

    def request(self, method: str, path: str, body: bytes | None = None):
        connection = UnixConnection(str(self.socket))
        try:
            connection.request(method, path, body=body)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def moto():
    server = MotoEc2().start()
    yield server
    server.stop()


def s3(moto: MotoEc2):
    import boto3
    return boto3.client("s3", endpoint_url=moto.endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def bucket(moto):
    s3(moto).create_bucket(Bucket=BUCKET,
                           CreateBucketConfiguration={"LocationConstraint": REGION})
    s3(moto).create_bucket(Bucket="elsewhere",
                           CreateBucketConfiguration={"LocationConstraint": REGION})
    return BUCKET


@pytest.fixture
def relay(moto, bucket):
    started = Relay(moto)
    yield started
    started.stop()


def objects(moto, bucket: str = BUCKET) -> dict[str, bytes]:
    client = s3(moto)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listed}


def test_objects_under_the_prefix_are_relayed_signed(relay, moto):
    key = f"/{BUCKET}/{PREFIX}a/b/entry"
    assert relay.request("PUT", key, b"compiled crate")[0] == 200
    assert objects(moto)[f"{PREFIX}a/b/entry"] == b"compiled crate"
    assert relay.request("GET", key) == (200, b"compiled crate")
    assert relay.request("HEAD", key)[0] == 200
    assert relay.request("GET", f"/{BUCKET}/{PREFIX}a/b/missing")[0] == 404


@pytest.mark.parametrize("method, path", [
    ("PUT", f"/{BUCKET}/elsewhere/entry"),                 # outside the prefix
    ("PUT", f"/elsewhere/{PREFIX}entry"),                   # another bucket
    ("PUT", f"/{BUCKET}/{PREFIX}../escape"),                # out by ..
    ("PUT", f"/{BUCKET}/{PREFIX}x/%2E%2E/%2E%2E/escape"),   # the same, encoded
    ("DELETE", f"/{BUCKET}/{PREFIX}a/b/entry"),
    ("POST", f"/{BUCKET}/{PREFIX}a/b/entry?uploads"),
    ("GET", f"/{BUCKET}?list-type=2"),                      # listing the bucket
    ("GET", f"/{BUCKET}/{PREFIX}a/b/entry?acl"),
    ("GET", "http://169.254.169.254/latest/meta-data/"),    # anything but S3
])
def test_everything_else_is_refused(relay, moto, method, path):
    relay.request("PUT", f"/{BUCKET}/{PREFIX}a/b/entry", b"kept")
    before = {**objects(moto), **{f"elsewhere:{k}": v for k, v in
                                  objects(moto, "elsewhere").items()}}
    status, body = relay.request(method, path, b"poison" if method in ("PUT", "POST") else None)
    assert status == 403 and body.startswith(b"refused: "), (status, body)
    assert {**objects(moto), **{f"elsewhere:{k}": v for k, v in
                                objects(moto, "elsewhere").items()}} == before
    assert "refused" in relay.log.read_text()


def test_a_read_only_relay_reads_but_stores_nothing(moto, bucket):
    s3(moto).put_object(Bucket=BUCKET, Key=f"{PREFIX}ro/entry", Body=b"shared")
    relay = Relay(moto, "--read-only")
    try:
        assert relay.request("GET", f"/{BUCKET}/{PREFIX}ro/entry") == (200, b"shared")
        status, _ = relay.request("PUT", f"/{BUCKET}/{PREFIX}ro/new", b"poison")
        assert status == 403
        assert f"{PREFIX}ro/new" not in objects(moto)
    finally:
        relay.stop()


def cargo_in_container(image: str, relay: Relay, crate: Path) -> subprocess.CompletedProcess:
    """A cold build of ``crate`` in a fresh container with no network, as an EC2 build
    runs: sccache on S3 through the forwarder and the relay's socket."""
    tool = tool_in(relay.directory / "tool")    # readable: the directory is 0755
    script = (f"python3 /tool/{tool.name} cache-forward {SOCKET_DIR}/relay.sock {PORT}"
              f" && cargo build --release --locked --target {MIPSEL}"
              " && sccache --show-stats && env")
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--cap-drop", "ALL",
         "--security-opt", "no-new-privileges",
         "-v", f"{relay.directory}:{SOCKET_DIR}:ro", "-v", f"{tool.parent}:/tool:ro",
         "-v", f"{crate}:/src:ro", "-w", "/src", "-e", "CARGO_TARGET_DIR=/tmp/target",
         "-e", "RUSTC_WRAPPER=/usr/local/bin/sccache", "-e", "SCCACHE_IDLE_TIMEOUT=0",
         "-e", f"SCCACHE_BUCKET={BUCKET}", "-e", f"SCCACHE_S3_KEY_PREFIX={PREFIX}",
         "-e", f"SCCACHE_ENDPOINT=http://127.0.0.1:{PORT}", "-e", "SCCACHE_S3_USE_SSL=false",
         "-e", "SCCACHE_S3_NO_CREDENTIALS=true", "-e", f"SCCACHE_REGION={REGION}",
         image, "bash", "-c", script],
        capture_output=True, text=True, timeout=600)


def stat(output: str, name: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith(name + " "))
    return int(line.split()[-1])


@pytest.mark.docker
@pytest.mark.slow
def test_sccache_in_a_container_without_network_shares_crates_through_s3(
        built_chain, relay, moto, tmp_path):
    require_docker()
    image = built_chain.reference(MIPSEL)
    first = renamed_copy("deps-demo", tmp_path, "first")
    second = renamed_copy("deps-demo", tmp_path, "second")
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)

    cold = cargo_in_container(image, relay, first)
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert stat(cold.stdout, "Cache misses") >= 8 and stat(cold.stdout, "Cache hits") == 0
    assert stat(cold.stdout, "Cache write errors") == 0
    stored = [k for k in objects(moto) if k.startswith(PREFIX) and "/.sccache_check" not in k]
    assert len(stored) >= 8

    again = cargo_in_container(image, relay, second)
    assert again.returncode == 0, again.stderr[-3000:]
    assert stat(again.stdout, "Cache hits") >= 8 and stat(again.stdout, "Cache misses") == 0
    # The build's environment (printed last) holds no credential.
    assert "AWS_" not in again.stdout and "testing" not in again.stdout
