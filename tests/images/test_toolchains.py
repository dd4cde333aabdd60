"""Every target's image cross-compiles a crate with no network, the artifact's
header names the target's machine, and Linux binaries run under qemu-user."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from rustfarm.images.targets import Target, get_target, load_targets
from tests.images.containers import run_crate
from tests.support.binaries import check_artifact

pytestmark = pytest.mark.docker


def artifact_path(target: Target, crate: str) -> str:
    suffix = {"pe": ".exe", "wasm": ".wasm"}.get(target.binary.format, "")
    return f"target/{target.triple}/debug/{crate}{suffix}"


def expected_line(target: Target) -> str:
    bits = target.binary.bits or 64
    endian = target.binary.endian or "little"
    return f"hello from {target.arch}, {bits}-bit {endian}-endian"


@pytest.mark.parametrize("target", load_targets(), ids=lambda t: t.triple)
def test_crate_builds_offline_as_rustbuild_and_runs(target, built_chain, docker_client, tmp_path):
    cargo = "cargo --offline --locked --color never"
    script = f"""
test "$(id -un)" = rustbuild
test "$(ls /sys/class/net)" = lo    # --network none: loopback only
{cargo} build --target {target.triple}
"""
    if target.runs_here:
        # `cargo run` and `cargo test` go through CARGO_TARGET_<TRIPLE>_RUNNER.
        script += f"{cargo} run -q --target {target.triple}\n"
        script += f"{cargo} test -q --target {target.triple}\n"
    run = run_crate(docker_client, built_chain.reference(target.triple), "hello-arch", script,
                    fetch=[artifact_path(target, "hello-arch")], outdir=tmp_path,
                    purpose=target.triple.split("-")[0])
    assert run.exit_code == 0, run.output[-3000:]

    header = check_artifact(run.files[artifact_path(target, "hello-arch")],
                            **asdict(target.binary))
    if header.format == "elf":
        assert header.kind in ("ET_EXEC", "ET_DYN")
    if target.runs_here:
        assert expected_line(target) in run.output.splitlines(), run.output[-2000:]
        assert "test result: ok. 1 passed" in run.output, run.output[-2000:]


def test_crate_with_debian_packaged_dependencies_cross_builds_for_mipsel(
        built_chain, docker_client, tmp_path):
    target = get_target("mipsel-unknown-linux-gnu")
    cargo = "cargo --offline --locked --color never"
    script = f"""
{cargo} build --target {target.triple}
{cargo} run -q --target {target.triple}
{cargo} test -q --target {target.triple}
"""
    run = run_crate(docker_client, built_chain.reference(target.triple), "deps-demo", script,
                    fetch=[artifact_path(target, "deps-demo")], outdir=tmp_path,
                    purpose="deps")
    assert run.exit_code == 0, run.output[-3000:]
    for crate in ("regex v1.", "serde_json v1.", "aho-corasick"):
        assert f"Compiling {crate}" in run.output
    assert ("deps-demo on mips: mipsel-unknown-linux-gnu mips64el-unknown-linux-gnuabi64"
            in run.output.splitlines())
    assert "test result: ok. 1 passed" in run.output
    check_artifact(run.files[artifact_path(target, "deps-demo")], **asdict(target.binary))
