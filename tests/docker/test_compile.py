"""Compile what is on the disk: `farm compile`, the HTTP endpoint with plain clients, and
Tessel's /rust-compile from node, against a real master, real Docker and qemu."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from rustfarm.workers.docker_volumes import (COMPILE_CACHE_DIR, compile_cache_volume_name,
                                             upload_volume_prefix)
from tests.support.binaries import check_artifact
from tests.support.crates import broken_crate, renamed_copy
from tests.support.crates_io import require_crates_io
from tests.support.docker_engine import unavailable
from tests.support.farm import EXAMPLE, RunningFarm
from tests.support.registry import free_port

from .conftest import FIXTURES, TARGETS, targets_yaml
from .test_container_builds import run_in_image

pytestmark = pytest.mark.docker

POOL = "cp"
MIPSEL = "mipsel-unknown-linux-musl"
AARCH64 = "aarch64-unknown-linux-musl"
MIPSEL_GNU = "mipsel-unknown-linux-gnu"
MAX_UPLOAD = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def compile_farm(built_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("compilefarm")
    tessel_port = free_port()
    farm = RunningFarm(root, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g}}
targets:
{targets_yaml(built_chain, POOL)}
compile:
  targets: [{MIPSEL}, {AARCH64}, {MIPSEL_GNU}]
  max_upload: {MAX_UPLOAD}
  queue: 1
  keep: 600
  tessel_port: {tessel_port}
  tessel_anonymous: true
projects: {{}}
""")
    farm.tessel_url = f"http://127.0.0.1:{tessel_port}/rust-compile"
    farm.up()
    farm.token = farm.farm("token", "admin").stdout.strip()
    try:
        yield farm
    finally:
        farm.down()
    prefix = upload_volume_prefix("test")
    left = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name={prefix}"],
                          capture_output=True, text=True).stdout.split()
    assert left == [], f"upload volumes left: {left}"


def upload_volumes() -> list[str]:
    return subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                           f"name={upload_volume_prefix('test')}"], capture_output=True,
                          text=True).stdout.split()


def check_binary(built_chain, path: Path, triple: str) -> None:
    """The binary's header is the target's, and it greets under the target's qemu."""
    target = TARGETS[triple]
    check_artifact(path, **target.binary.__dict__)
    ran = run_in_image(built_chain.reference(triple), path.parent, path.name, [target.qemu])
    assert ran.startswith("Hello"), ran


def tar_of(directory: Path, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for path in sorted(directory.rglob("*")):
            if "target" not in path.relative_to(directory).parts:
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def post(farm: RunningFarm, data: bytes, token: str | None = "farm", **params):
    headers = {"Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {farm.token if token == 'farm' else token}"
    return requests.post(f"{farm.url}plugins/compile/jobs", data=data, params=params,
                         headers=headers, timeout=900)


def test_farm_compile_builds_mipsel_and_aarch64_binaries_that_run(compile_farm, built_chain,
                                                                tmp_path):
    project = tmp_path / "hello"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    out = tmp_path / "out"
    done = compile_farm.farm("compile", str(project), "--target", MIPSEL, "--target", AARCH64,
                             "--out", str(out), timeout=900)
    assert f"{MIPSEL}: success" in done.stdout and f"{AARCH64}: success" in done.stdout
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 2
    for line in sums:
        digest, name = line.split()
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        target = MIPSEL if MIPSEL in name else AARCH64
        assert name.startswith("hello-") and name.endswith(f"-{target}.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp_path / target, filter="data")
        check_binary(built_chain, tmp_path / target / "hello", target)
    # The builds are the farm's: under the compile project, owned by the uploader.
    builders = {b["name"]: b for b in compile_farm.api("builders")["builders"]}
    builds = compile_farm.api("builds", builderid=builders[f"compile:{MIPSEL}"]["builderid"],
                              property="owner")["builds"]
    assert builds[-1]["properties"]["owner"][0] == "admin"


def test_a_plain_client_gets_the_binary_for_one_target(compile_farm, built_chain, tmp_path):
    reply = post(compile_farm, tar_of(EXAMPLE), target=MIPSEL)
    assert reply.status_code == 200, reply.text
    # Its volume went with its container.
    deadline = time.monotonic() + 30
    while upload_volumes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert upload_volumes() == []
    binary = tmp_path / "hello"
    binary.write_bytes(reply.content)
    binary.chmod(0o755)
    check_binary(built_chain, binary, MIPSEL)
    # Asking for the archive gets the usual <name>-<target>.tar.gz.
    archive = requests.post(f"{compile_farm.url}plugins/compile/jobs", data=tar_of(EXAMPLE),
                            params={"target": MIPSEL}, timeout=900,
                            headers={"Authorization": f"Bearer {compile_farm.token}",
                                     "Accept": "application/gzip"})
    assert archive.status_code == 200
    assert f'filename="hello-{MIPSEL}.tar.gz"' in archive.headers["content-disposition"]


# An uploaded crate's build script that tries to put a file into the shared compile
# cache: it fails the build (and so the upload) if the write goes through.
CACHE_PROBE_BUILD_RS = f"""\
fn main() {{
    let probe = "{COMPILE_CACHE_DIR}/probe-from-an-upload";
    match std::fs::write(probe, b"poisoned") {{
        Ok(()) => panic!("an upload wrote into the shared compile cache: {{probe}}"),
        Err(err) => println!("cargo:warning=the compile cache refused a write: {{err}}"),
    }}
}}
"""


def compile_cache_files(image: str, triple: str) -> set[str]:
    volume = compile_cache_volume_name("test", image, triple)
    listed = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0",
                             "-v", f"{volume}:/cache:ro", image, "find", "/cache", "-type", "f"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    return set(listed.stdout.split())


def test_an_upload_reads_the_compile_cache_but_cannot_add_to_it(compile_farm, built_chain,
                                                                tmp_path):
    """Anyone's code: its build script cannot write into the cache, and the dependencies
    it compiles are not stored for the farm's projects."""
    image = built_chain.reference(MIPSEL_GNU)
    before = compile_cache_files(image, MIPSEL_GNU)
    crate = renamed_copy("deps-demo", tmp_path, "cacheprobe")
    (crate / "build.rs").write_text(CACHE_PROBE_BUILD_RS)
    reply = post(compile_farm, tar_of(crate), target=MIPSEL_GNU)
    assert reply.status_code == 200, reply.text[-3000:]
    binary = tmp_path / "out" / "cacheprobe"
    binary.parent.mkdir()
    binary.write_bytes(reply.content)
    binary.chmod(0o755)
    check_artifact(binary, **TARGETS[MIPSEL_GNU].binary.__dict__)
    assert run_in_image(image, binary.parent, binary.name, [TARGETS[MIPSEL_GNU].qemu]) \
        .startswith("deps-demo on mips:")
    # The crate cache compiled regex and serde_json and was not allowed to store them.
    builders = {b["name"]: b for b in compile_farm.api("builders")["builders"]}
    [build] = compile_farm.api("builds", builderid=builders[f"compile:{MIPSEL_GNU}"]["builderid"],
                               order="-number", limit=1, property="compile_cache")["builds"]
    counts = build["properties"]["compile_cache"][0]
    assert counts["read_only"] and counts["misses"] + counts["hits"] >= 2 \
        and counts["errors"] == 0, (counts, compile_farm.step_log(build, "cargo build")[-3000:])
    assert compile_cache_files(image, MIPSEL_GNU) == before


def test_a_compile_error_is_a_400_with_the_compiler_message(compile_farm, tmp_path):
    reply = post(compile_farm, tar_of(broken_crate(tmp_path / "broken")), target=MIPSEL)
    assert reply.status_code == 400
    assert f"{MIPSEL}: failure at cargo build" in reply.text
    assert "error[E0308]: mismatched types" in reply.text
    assert "--> src/main.rs:2:18" in reply.text
    assert f"log: {compile_farm.url}#/builders/" in reply.text


def test_credentials_size_and_queue_are_enforced(compile_farm, tmp_path):
    no_token = post(compile_farm, tar_of(EXAMPLE), token=None)
    assert no_token.status_code == 401 and "farm token" in no_token.text
    wrong = post(compile_farm, tar_of(EXAMPLE), token="not-the-token")
    assert wrong.status_code == 401
    too_big = post(compile_farm, b"\0" * (MAX_UPLOAD + 1))
    assert too_big.status_code == 413 and "compile.max_upload" in too_big.text

    slow = tmp_path / "slow"
    shutil.copytree(FIXTURES / "slow", slow, ignore=shutil.ignore_patterns("target"))
    (slow / "slow.txt").write_text("20\n")
    first = post(compile_farm, tar_of(slow), target=MIPSEL, wait="0")
    assert first.status_code == 202, first.text
    job = first.json()["job"]
    full = post(compile_farm, tar_of(EXAMPLE), target=MIPSEL)
    assert full.status_code == 429 and full.headers["Retry-After"] == "30"
    deadline = time.monotonic() + 600
    state = {}
    while time.monotonic() < deadline:
        state = requests.get(f"{compile_farm.url}plugins/compile/jobs/{job}", timeout=30,
                             headers={"Authorization": f"Bearer {compile_farm.token}"}).json()
        if state["state"] != "running":
            break
        time.sleep(1)
    assert state["state"] == "succeeded", state


HOSTILE = {
    "absolute": ("/tmp/rustfarm-owned", "absolute paths are not allowed"),
    "dotdot": ("../../rustfarm-owned", "'..' would leave the project"),
}


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "device", "bomb"])
def test_hostile_uploads_get_a_400_naming_the_member(compile_farm, tmp_path, kind):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        manifest = b'[package]\nname = "x"\nversion = "0.1.0"\n'
        info = tarfile.TarInfo("Cargo.toml")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        if kind in HOSTILE:
            info = tarfile.TarInfo(HOSTILE[kind][0])
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
            expected = HOSTILE[kind][1]
        elif kind == "symlink":
            info = tarfile.TarInfo("src")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc"
            tar.addfile(info)
            expected = "member 'src': links to an absolute path (/etc)"
        elif kind == "device":
            info = tarfile.TarInfo("dev")
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
            expected = "member 'dev': devices, fifos"
        else:
            for index in range(20001):
                tar.addfile(tarfile.TarInfo(f"f{index}"), io.BytesIO(b""))
            expected = "more than 20000 members"
    reply = post(compile_farm, gzip.compress(buffer.getvalue()))
    assert reply.status_code == 400
    assert expected in reply.text
    assert not Path("/tmp/rustfarm-owned").exists()
    uploads = compile_farm.state / "uploads"
    assert not uploads.exists() or all(
        (d / "source.tar.gz").exists() for d in uploads.iterdir()), "refused uploads are removed"


TESSEL = Path(__file__).resolve().parents[1] / "fixtures" / "tessel"


def npm_install(directory: Path, *packages: str) -> dict:
    """``packages`` from the npm registry into ``directory`` (no install scripts run);
    node's environment to require them."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        unavailable("node and npm are not installed (Debian: apt-get install nodejs npm)")
    directory.mkdir(parents=True, exist_ok=True)
    installed = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund",
                                "--ignore-scripts", *packages], cwd=directory,
                               capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        unavailable(f"npm could not install {' '.join(packages)}: {installed.stderr[-300:]}")
    return {**os.environ, "NODE_PATH": str(directory / "node_modules")}


def test_tessels_first_clients_get_the_raw_mipsel_binary(compile_farm, built_chain, tmp_path):
    env = npm_install(tmp_path / "client", "tar@6.2.1")
    project = tmp_path / "blinky"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    done = subprocess.run(["node", str(TESSEL / "old-client.js"), compile_farm.tessel_url,
                           str(project), str(tmp_path / "blinky.bin")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "200"
    binary = tmp_path / "blinky.bin"
    binary.chmod(0o755)
    check_binary(built_chain, binary, MIPSEL)


def test_tessels_last_client_gets_its_project_back_as_a_mipsel_binary(compile_farm,
                                                                      tmp_path):
    """t2-cli 0.1.23 from npm, as `t2 run Cargo.toml --rustcc=HOST:PORT` calls it, with
    the project `t2 init --lang=rust` writes: it depends on the tessel crate from
    crates.io, and comes back as JSON holding a tar of the binary under its name."""
    require_crates_io()
    env = npm_install(tmp_path / "t2", "t2-cli@0.1.23")
    template = tmp_path / "t2" / "node_modules" / "t2-cli" / "resources" / "rust"
    project = tmp_path / "blinky"
    (project / "src").mkdir(parents=True)
    shutil.copy(template / "Cargo.toml", project / "Cargo.toml")
    shutil.copy(template / "main.rs", project / "src" / "main.rs")
    rustcc = compile_farm.tessel_url.rsplit("/rust-compile", 1)[0]
    done = subprocess.run(["node", str(TESSEL / "t2-compile.js"), rustcc, str(project),
                           "blinky", str(tmp_path / "blinky.tar")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(tmp_path / "blinky.tar") as tar:
        assert tar.getnames() == ["blinky"]
        tar.extractall(tmp_path / "out", filter="data")
    binary = tmp_path / "out" / "blinky"
    check_artifact(binary, **TARGETS[MIPSEL].binary.__dict__)
    # Off a Tessel its library finds no board: the tessel crate's own code, running on
    # emulated MIPS, says so.
    ran = subprocess.run([TARGETS[MIPSEL].qemu, str(binary)], capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 101 and "tessel-0.2.0" in ran.stderr, ran.stderr

    # A build that fails is the client's error, in its own words.
    (project / "src" / "main.rs").write_text('fn main() { let n: u32 = "four"; }\n')
    failed = subprocess.run(["node", str(TESSEL / "t2-compile.js"), rustcc, str(project),
                             "blinky", str(tmp_path / "failed.tar")], env=env,
                            capture_output=True, text=True, timeout=900)
    assert failed.returncode == 1 and "mismatched types" in failed.stderr, failed.stderr
