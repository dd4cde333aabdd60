"""Every target of the table built through the master, each build in a fresh
container of its image, with Rust 1.96 (and Debian's 1.63 where pinned)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests
from elftools.elf.elffile import ELFFile

from tests.support.binaries import check_artifact

from .conftest import (BIG_ENDIAN, OLD_RUST, RUNNABLE, SMALL, TARGETS, cache_volume, farm_containers,
                       wait_until_no_containers)

pytestmark = pytest.mark.docker


def build(farm, project: str, triple: str) -> dict:
    farm.login()
    [brid] = farm.force(f"force-{project}", targets=[triple]).values()
    return farm.wait_for_build(brid, timeout=600)


def fetch_binary(farm, build: dict, name: str, dest) -> Path:
    [archive_url] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    reply = requests.get(archive_url, timeout=60)
    reply.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
        tar.extractall(dest, filter="data")
    return dest / name


def run_in_image(image: str, directory: Path, binary: str, runner: list[str]) -> str:
    # As root: pytest's temporary directories are private to root.
    ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0",
                          "-v", f"{directory}:/artifact:ro", image, *runner,
                          f"/artifact/{binary}"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


def has_symbols(path: Path) -> bool:
    with path.open("rb") as stream:
        return ELFFile(stream).get_section_by_name(".symtab") is not None


@pytest.mark.parametrize("triple", list(TARGETS))
def test_target_builds_in_its_container_with_rust_196(docker_farm, built_chain, triple,
                                                     tmp_path):
    target = TARGETS[triple]
    result = build(docker_farm, "arch", triple)
    assert result["results"] == 0, docker_farm.step_log(result, "cargo build")[-3000:]
    properties = docker_farm.api(f"builds/{result['buildid']}", property="*")["builds"][0]
    assert properties["properties"]["toolchain"][0] == "1.96.0"
    steps = {step["name"]: step for step in docker_farm.steps(result)}
    assert steps["toolchain"]["state_string"] == "Rust 1.96.0"
    assert steps["compile cache"]["state_string"] == "crate cache"
    # The image's own copy of the worker tool runs, the source sent along with it.
    fetch = docker_farm.step_log(result, "fetch source")
    assert "python3 /usr/local/lib/rustfarm/farm_worker_tool.pyz unpack - " in fetch, fetch
    # std comes from the image's sysroot: the project's build compiles only itself.
    log = docker_farm.step_log(result, "cargo build")
    assert "Compiling hello-arch" in log
    for crate in ("core", "std", "alloc", "compiler_builtins"):
        assert f"Compiling {crate} " not in log

    binary = fetch_binary(docker_farm, result, f"hello-arch{target.executable_suffix}", tmp_path)
    header = check_artifact(binary, **target.binary.__dict__)
    assert steps["package"]["state_string"].startswith(f"packaged {binary.name} (")
    if target.binary.format == "elf":
        assert not has_symbols(binary), "shipped binaries are stripped by default"
    if target.runs_here:
        runner = [] if target.is_native else [target.qemu]
        expected = (f"hello from {target.arch}, {header.bits}-bit {header.endian}-endian")
        assert run_in_image(built_chain.reference(triple), tmp_path, binary.name,
                            runner) == expected
        test_log = docker_farm.step_log(result, "cargo test")
        assert "test result: ok. 1 passed" in test_log
    else:
        assert "cargo test" not in steps
    # Each build had a container of its own, removed once the build ended.
    assert wait_until_no_containers(30) == []


@pytest.mark.parametrize("triple", RUNNABLE)
def test_cargo_test_runs_on_the_target_machine(docker_farm, triple):
    """The byte-order test passes on big-endian targets only: it ran on the target."""
    result = build(docker_farm, "byteorder", triple)
    log = docker_farm.step_log(result, "cargo test")
    if triple in BIG_ENDIAN:
        assert result["results"] == 0, log[-2000:]
        assert "test tests::runs_on_a_big_endian_machine ... ok" in log
    else:
        assert result["results"] == 2, log[-2000:]
        assert "this machine is little-endian" in log
        assert "test tests::runs_on_a_big_endian_machine ... FAILED" in log
    if not TARGETS[triple].is_native:
        # The kernel cannot run the target's test binary by itself (no
        # binfmt_misc handler for it), so it ran through the image's qemu runner.
        handlers = list(Path("/proc/sys/fs/binfmt_misc").glob(f"*{TARGETS[triple].qemu[5:]}*"))
        assert handlers == []


@pytest.mark.parametrize("triple", SMALL)
def test_min_size_and_a_project_s_own_lto_link_against_std_s_bitcode(docker_farm, built_chain,
                                                                    triple, tmp_path):
    """Fat LTO needs std's LLVM bitcode, which the image's std (built from source) keeps:
    the min-size profile and a project's own lto = true both link, run on the target,
    and min-size is the smallest."""
    sizes = {}
    for project in ("arch", "lto", "tiny"):
        result = build(docker_farm, project, triple)
        assert result["results"] == 0, docker_farm.step_log(result, "cargo build")[-3000:]
        binary = fetch_binary(docker_farm, result, "hello-arch", tmp_path / project)
        check_artifact(binary, **TARGETS[triple].binary.__dict__)
        target = TARGETS[triple]
        assert run_in_image(built_chain.reference(triple), binary.parent, binary.name,
                            [target.qemu]).startswith(f"hello from {target.arch}")
        sizes[project] = binary.stat().st_size
    assert sizes["tiny"] < sizes["arch"], sizes


def test_unstripped_when_the_project_says_so(docker_farm, tmp_path):
    result = build(docker_farm, "byteorder", "s390x-unknown-linux-gnu")
    assert result["results"] == 0
    assert has_symbols(fetch_binary(docker_farm, result, "byte-order", tmp_path))


@pytest.mark.parametrize("triple", ["mipsel-unknown-linux-gnu", "mips-unknown-linux-musl"])
def test_crate_with_dependencies_builds_offline_and_rebuilds_only_itself(docker_farm, built_chain,
                                                                        triple, tmp_path):
    farm = docker_farm
    first = build(farm, "deps", triple)
    assert first["results"] == 0, farm.step_log(first, "cargo build")[-3000:]
    cold = farm.step_log(first, "cargo build")
    assert "Compiling regex" in cold and "Compiling serde_json" in cold
    assert "Updating crates.io index" not in cold and "Downloading" not in cold
    binary = fetch_binary(farm, first, "deps-demo", tmp_path)
    check_artifact(binary, **TARGETS[triple].binary.__dict__)
    output = run_in_image(built_chain.reference(triple), tmp_path, "deps-demo",
                          [TARGETS[triple].qemu])
    assert output.startswith("deps-demo on mips: ")

    main = farm.deps_source / "src" / "main.rs"
    main.write_text(main.read_text().replace('println!("deps-demo on', 'println!("deps-demo (changed) on'))
    try:
        second = build(farm, "deps", triple)
    finally:
        main.write_text(main.read_text().replace("deps-demo (changed) on", "deps-demo on"))
    assert second["results"] == 0
    warm = farm.step_log(second, "cargo build")
    assert "Compiling deps-demo" in warm
    assert "Compiling regex" not in warm and "Compiling serde_json" not in warm


def test_a_project_pinned_to_rust_163_builds_with_it(docker_farm, tmp_path):
    result = build(docker_farm, "legacy", OLD_RUST)
    assert result["results"] == 0, docker_farm.step_log(result, "cargo build")[-3000:]
    steps = {step["name"]: step for step in docker_farm.steps(result)}
    assert steps["toolchain"]["state_string"] == "Rust 1.63.0"
    assert steps["compile cache"]["state_string"] == "crate cache"
    build_props = docker_farm.api(f"builds/{result['buildid']}", property="*")["builds"][0]
    assert build_props["properties"]["toolchain"][0] == "1.63.0"
    assert build_props["properties"]["image"][0].split(":")[1].startswith("1.63-")
    check_artifact(fetch_binary(docker_farm, result, "deps-demo", tmp_path), "elf",
                   machine="EM_X86_64")


def test_a_project_newer_than_its_pinned_toolchain_fails_at_once_naming_both(docker_farm):
    result = build(docker_farm, "too-new", OLD_RUST)
    assert result["results"] == 2
    steps = docker_farm.steps(result)
    failed = [s for s in steps if s["results"] == 2]
    assert [s["name"] for s in failed] == ["toolchain"]
    assert failed[0]["state_string"].startswith("needs Rust 1.88 or newer, has Rust 1.63.0")
    log = docker_farm.step_log(result, "toolchain")
    assert ("error: too-new needs Rust 1.88 or newer (Cargo.toml: rust-version = \"1.88\"),"
            " but its toolchain is Rust 1.63.0; pin a newer toolchain in farm.yaml"
            " (projects.too-new.toolchain)") in log
    assert "cargo build" not in [s["name"] for s in steps if s["started_at"]]


def test_containers_get_the_pools_limits_and_no_network(docker_farm, built_chain):
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
    assert host["MemorySwap"] == host["Memory"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] > 0
    assert not any(env.startswith("WORKERPASS=") for env in seen["Config"]["Env"])
    assert any(m["Type"] == "volume" and m["Name"] == cache_volume(
        "arch", "aarch64-unknown-linux-gnu", built_chain.reference("aarch64-unknown-linux-gnu"))
               for m in seen["Mounts"])


def test_concurrent_builds_of_one_target_share_the_cache_safely(docker_farm, tmp_path):
    farm = docker_farm
    farm.login()
    brids = [farm.force("force-deps", targets=["mipsel-unknown-linux-gnu"]).popitem()[1]
             for _ in range(2)]
    first, second = (farm.wait_for_build(b, timeout=600) for b in brids)
    assert first["results"] == 0 and second["results"] == 0
    # The cache's lock makes them take turns: one compiled after the other had finished.
    spans = sorted((step["started_at"], step["complete_at"])
                   for build in (first, second) for step in farm.steps(build)
                   if step["name"] == "cargo build")
    assert spans[1][0] >= spans[0][1]
    binary = fetch_binary(farm, second, "deps-demo", tmp_path)
    check_artifact(binary, "elf", machine="EM_MIPS", bits=32, endian="little")
