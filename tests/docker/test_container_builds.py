"""Every target built through the master, each build in a fresh container of its image."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from tests.support.binaries import check_artifact

from .conftest import TARGETS, farm_containers, wait_until_no_containers

pytestmark = pytest.mark.docker


def build(farm, project: str, triple: str) -> dict:
    farm.login()
    [brid] = farm.force(f"force-{project}", targets=[triple]).values()
    return farm.wait_for_build(brid, timeout=600)


def fetch_binary(farm, build: dict, name: str, dest) -> "Path":
    [archive_url] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    reply = requests.get(archive_url, timeout=60)
    reply.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
        tar.extractall(dest, filter="data")
    return dest / name


@pytest.mark.parametrize("triple", list(TARGETS))
def test_target_builds_in_its_container(docker_farm, built_chain, triple, tmp_path):
    target = TARGETS[triple]
    result = build(docker_farm, "arch", triple)
    assert result["results"] == 0, docker_farm.step_log(result, "cargo build")[-3000:]
    suffix = {"pe": ".exe", "wasm": ".wasm"}.get(target.binary.format, "")
    binary = fetch_binary(docker_farm, result, f"hello-arch{suffix}", tmp_path)
    check_artifact(binary, target.binary.format, machine=target.binary.machine,
                   bits=target.binary.bits, endian=target.binary.endian,
                   float=target.binary.float)
    if target.binary.format == "elf":
        runner = [target.qemu] if target.qemu else []
        # As root: pytest's temporary directories are private to root.
        ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0",
                              "-v", f"{tmp_path}:/artifact:ro", built_chain.reference(triple),
                              *runner, f"/artifact/{binary.name}"],
                             capture_output=True, text=True, timeout=120)
        expected = (f"hello from {target.arch}, {target.binary.bits}-bit "
                    f"{target.binary.endian}-endian")
        assert ran.stdout.strip() == expected, ran.stderr
    # Each build had a container of its own, removed once the build ended.
    assert wait_until_no_containers(30) == []


@pytest.mark.parametrize("triple", ["mipsel-unknown-linux-gnu", "aarch64-unknown-linux-gnu"])
def test_cargo_test_runs_through_the_targets_runner(docker_farm, triple):
    farm = docker_farm
    builds = [b for b in farm.api("builds", property="target")["builds"]
              if b["properties"].get("target", [None])[0] == triple and b["results"] == 0]
    result = builds[-1] if builds else build(farm, "arch", triple)
    log = farm.step_log(result, "cargo test")
    assert "Running unittests" in log and "test result: ok. 1 passed" in log
    # The kernel cannot run the target's test binary by itself (no binfmt_misc
    # handler for it), so it ran through the image's qemu runner.
    arch_handlers = list(Path("/proc/sys/fs/binfmt_misc").glob(f"*{TARGETS[triple].qemu[5:]}*"))
    assert arch_handlers == []


def test_crate_with_dependencies_builds_offline_and_rebuilds_only_itself(docker_farm):
    farm = docker_farm
    network = subprocess.run(["docker", "network", "inspect", "rustfarm-test", "--format",
                              "{{.Internal}}"], capture_output=True, text=True, check=True)
    assert network.stdout.strip() == "true", "containers must build without network access"

    first = build(farm, "deps", "mipsel-unknown-linux-gnu")
    assert first["results"] == 0, farm.step_log(first, "cargo build")[-3000:]
    cold = farm.step_log(first, "cargo build")
    assert "Compiling regex" in cold and "Compiling serde_json" in cold
    assert "Updating crates.io index" not in cold and "Downloading" not in cold

    main = farm.deps_source / "src" / "main.rs"
    main.write_text(main.read_text().replace('println!("deps-demo on', 'println!("deps-demo (changed) on'))
    second = build(farm, "deps", "mipsel-unknown-linux-gnu")
    assert second["results"] == 0
    warm = farm.step_log(second, "cargo build")
    assert "Compiling deps-demo" in warm
    assert "Compiling regex" not in warm and "Compiling serde_json" not in warm


def test_containers_get_the_pools_limits_and_the_internal_network(docker_farm):
    farm = docker_farm
    farm.login()
    [brid] = farm.force("force-arch", targets=["aarch64-unknown-linux-gnu"]).values()
    seen: dict = {}
    deadline = time.monotonic() + 120
    while not seen and time.monotonic() < deadline:
        for name in farm_containers():
            inspected = subprocess.run(["docker", "inspect", name], capture_output=True, text=True)
            if inspected.returncode == 0:
                seen = json.loads(inspected.stdout)[0]
                break
        time.sleep(0.05)
    farm.wait_for_build(brid)
    assert seen, "no container was seen running the build"
    host = seen["HostConfig"]
    assert host["NanoCpus"] == 2_000_000_000 and host["Memory"] == 3 * 1024 ** 3
    assert host["NetworkMode"] == "rustfarm-test"
    assert any(m["Type"] == "volume" and m["Name"] == "rustfarm-test-arch-aarch64-unknown-linux-gnu"
               for m in seen["Mounts"])


def test_concurrent_builds_of_one_target_share_the_cache_safely(docker_farm, tmp_path):
    farm = docker_farm
    farm.login()
    brids = [farm.force("force-deps").popitem()[1] for _ in range(2)]
    first, second = (farm.wait_for_build(b, timeout=600) for b in brids)
    assert first["results"] == 0 and second["results"] == 0
    # The cache's lock makes them take turns: one compiled after the other had finished.
    spans = sorted((step["started_at"], step["complete_at"])
                   for build in (first, second) for step in farm.steps(build)
                   if step["name"] == "cargo build")
    assert spans[1][0] >= spans[0][1]
    binary = fetch_binary(farm, second, "deps-demo", tmp_path)
    check_artifact(binary, "elf", machine="EM_MIPS", bits=32, endian="little")
