"""Crates that build C code, on the targets routers run: ring (C and assembly),
openssl with its vendored OpenSSL, libsqlite3-sys with its bundled SQLite and zstd,
in one project (tests/fixtures/crates/c-deps) whose binary does real work with each
under qemu: a SHA-256, a TLS handshake in memory, an SQL query and a zstd round
trip. A target without a C compiler names the crate that needs one.

The builds are slow the first time (OpenSSL is compiled for each target); the
project's cache volumes are the farm "ccrates"'s, which outlive the test, so later
runs rebuild only what changed. benchmarks/crater.py covers every MIPS target.
"""

from __future__ import annotations

import pytest

from tests.support.binaries import check_artifact
from tests.support.crates import write_crate
from tests.support.crates_io import require_crates_io
from tests.support.farm import RunningFarm

from .conftest import FIXTURES, TARGETS, targets_yaml, up_for_the_module
from .test_container_builds import fetch_binary, run_in_image

pytestmark = pytest.mark.docker

POOL = "cx"
# The zig-linked musl path and the cross-gcc glibc path of 32-bit MIPS, and 64-bit ARM
# musl; the other MIPS targets in benchmarks/crater.py and the C crates table.
TARGETS_BUILT = ["mips-unknown-linux-musl", "mipsel-unknown-linux-gnu",
                 "aarch64-unknown-linux-musl"]
WASM = "wasm32-unknown-unknown"
SHA256_OF_RUSTFARM = "d8af84d56ed0c32b41f9c83ff096795a9aadb26f5706f63213d423a185cb3645"


@pytest.fixture(scope="module")
def c_farm(built_chain, tmp_path_factory):
    require_crates_io()
    root = tmp_path_factory.mktemp("cfarm")
    zstd_only = write_crate(root / "zstd-only", "zstd-only", "fn main() {}\n")
    (zstd_only / "Cargo.toml").write_text((zstd_only / "Cargo.toml").read_text()
                                          + '\n[dependencies]\nzstd-sys = "2"\n')
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g, standby: 0}}
targets:
{targets_yaml(built_chain, POOL)}
projects:
  c-deps:
    source: {FIXTURES / 'c-deps'}
    targets: [{', '.join(TARGETS_BUILT)}]
    test: false
  zstd-wasm:
    source: {zstd_only}
    targets: [{WASM}]
    test: false
""")
    farm.config.write_text(farm.config.read_text().replace("name: test", "name: ccrates"))
    yield from up_for_the_module(farm, POOL)


def test_c_libraries_build_and_work_on_mips_and_arm(c_farm, built_chain, tmp_path):
    c_farm.login()
    brids = c_farm.force("force-c-deps", targets=TARGETS_BUILT)
    for name, brid in brids.items():
        triple = name.split(":", 1)[1]
        build = c_farm.wait_for_build(brid, timeout=2400)
        assert build["results"] == 0, (triple, c_farm.step_log(build, "cargo build")[-4000:])
        target = TARGETS[triple]
        binary = fetch_binary(c_farm, build, "c-deps", tmp_path / triple)
        check_artifact(binary, **target.binary.__dict__)
        output = run_in_image(built_chain.reference(triple), binary.parent, binary.name,
                              [target.qemu]).splitlines()
        assert output == [f"ring sha256: {SHA256_OF_RUSTFARM}",
                          "openssl: TLSv1.3 handshake in memory", "sqlite: sum = 42",
                          "zstd: 69 bytes packed"], (triple, output)


def test_a_target_without_a_c_compiler_names_the_crate_that_needs_one(c_farm):
    c_farm.login()
    [brid] = c_farm.force("force-zstd-wasm", targets=[WASM]).values()
    build = c_farm.wait_for_build(brid, timeout=600)
    assert build["results"] == 2
    steps = {s["name"]: s for s in c_farm.steps(build)}
    summary = steps["cargo build"]["state_string"]
    assert summary.startswith("zstd-sys v2.") and \
        f": its build script failed for {WASM}: {WASM} has no C compiler" in summary, \
        (summary, c_farm.step_log(build, "cargo build")[-3000:])
