"""The shared compile cache of a docker pool: the worker tool's crate cache, one
volume per (farm, toolchain, target) for every project's builds.

A second project with the same dependencies compiles none of them (the cache's
counts and the crates it names, in the build's log and its ``compile_cache``
property); two projects built at once on one cache both succeed and their binaries
run; a dependency built with other features is compiled again, not taken from the
cache, as is one whose build script gives it another environment variable or other
generated code; a library's dependents start on its metadata through the cache as without it
(cargo's pipelining)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rustfarm.workers.docker_volumes import compile_cache_volume_name
from tests.support.crates import chain_crate, generated_crate, renamed_copy, set_generated
from tests.support.farm import RunningFarm

from .conftest import TARGETS, cache_volume, remove_cache_volumes, up_for_the_module
from .test_container_builds import fetch_binary, run_in_image

pytestmark = pytest.mark.docker

POOL = "cc"
HOST = "x86_64-unknown-linux-gnu"
MIPSEL = "mipsel-unknown-linux-gnu"
FARM = "cachetest"


def copy_of_deps_demo(root, name: str, regex: str | None = None):
    """deps-demo as the crate ``name`` (another project's crate, same dependencies);
    with ``regex``, that dependency line instead (other features of the same packages:
    the Cargo.lock stays as it is)."""
    crate = renamed_copy("deps-demo", root, name)
    if regex:
        manifest = crate / "Cargo.toml"
        manifest.write_text(re.sub(r'^regex = .*$', f"regex = {regex}", manifest.read_text(),
                                   flags=re.MULTILINE))
    return crate


@pytest.fixture(scope="module")
def cache_farm(built_chain, tmp_path_factory):
    remove_cache_volumes(FARM)
    root = tmp_path_factory.mktemp("cachefarm")
    projects = {"first": copy_of_deps_demo(root, "first"),
                "second": copy_of_deps_demo(root, "second"),
                "twin-a": copy_of_deps_demo(root, "twin-a"),
                "twin-b": copy_of_deps_demo(root, "twin-b"),
                "features": copy_of_deps_demo(
                    root, "features",
                    regex='{ version = "1", default-features = false, '
                          'features = ["std", "perf", "unicode-perl"] }'),
                "chain": chain_crate(root / "chain", "chain"),
                "generated": generated_crate(root / "generated", "generated", motd="one",
                                             banner="one")}
    targets = {"first": HOST, "second": HOST, "features": HOST, "twin-a": MIPSEL,
               "twin-b": MIPSEL, "chain": HOST, "generated": HOST}
    farm = RunningFarm(root, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g}}
targets:
  {HOST}: {{pool: {POOL}, image: {built_chain.reference(HOST)}}}
  {MIPSEL}: {{pool: {POOL}, image: {built_chain.reference(MIPSEL)}}}
projects:
""" + "".join(f"  {name}: {{source: {path}, targets: [{targets[name]}], binaries: [{name}],"
              " test: false}\n" for name, path in projects.items()))
    farm.config.write_text(farm.config.read_text().replace("name: test", f"name: {FARM}"))
    yield from up_for_the_module(farm, POOL, cleanup=lambda: remove_cache_volumes(FARM))


def force(farm, project: str) -> int:
    farm.login()
    [brid] = farm.force(f"force-{project}").values()
    return brid


def cache_counts(farm, build: dict) -> dict:
    props = farm.api(f"builds/{build['buildid']}", property="compile_cache")["builds"][0]
    return props["properties"]["compile_cache"][0]


def compile_cache_log(farm, build: dict) -> str:
    step = next(s for s in farm.steps(build) if s["name"] == "cargo build")
    reply = farm.session.get(f"{farm.url}api/v2/builds/{build['buildid']}/steps/"
                             f"{step['number']}/logs/compile_cache/raw", timeout=30)
    reply.raise_for_status()
    return reply.text


def test_a_second_project_takes_every_dependency_from_the_cache(cache_farm, built_chain,
                                                               tmp_path):
    first = cache_farm.wait_for_build(force(cache_farm, "first"), timeout=600)
    assert first["results"] == 0, cache_farm.step_log(first, "cargo build")[-3000:]
    cold = cache_counts(cache_farm, first)
    assert cold["hits"] == 0 and cold["misses"] >= 5, cold

    second = cache_farm.wait_for_build(force(cache_farm, "second"), timeout=600)
    assert second["results"] == 0, cache_farm.step_log(second, "cargo build")[-3000:]
    warm = cache_counts(cache_farm, second)
    # Every crate the first build stored, and none compiled: the project's own crate
    # goes to rustc, and build scripts are programs, which the cache does not keep.
    assert warm["misses"] == 0 and warm["errors"] == 0, warm
    assert warm["hits"] == cold["misses"], (cold, warm)
    log = compile_cache_log(cache_farm, second)
    assert f"crates from the cache (hits):      {warm['hits']}" in log
    assert re.search(r"^from the cache: +.*\bregex-syntax\b.*\bserde_json\b", log, re.M), log
    steps = {s["name"]: s for s in cache_farm.steps(second)}
    assert steps["toolchain"]["state_string"] == "Rust 1.96.0"
    assert steps["compile cache"]["state_string"] == "crate cache"
    assert f"{warm['hits']} crates from the cache, 0 compiled" in \
        steps["cargo build"]["state_string"]

    binary = fetch_binary(cache_farm, second, "second", tmp_path)
    assert run_in_image(built_chain.reference(HOST), tmp_path, binary.name,
                        []).startswith("deps-demo on x86_64:")


def test_the_project_s_own_crates_go_to_rustc_not_through_the_cache(cache_farm, built_chain,
                                                                    tmp_path):
    # After the second project's first build (above), it gains a library: the project's
    # own crates are built in its target directory (its project's volume) and the cache
    # sees none of them, so the shared cache holds nothing of one project's own code.
    # (Through the cache, the library would be a miss, stored.)
    crate = cache_farm.directory / "second" / "src"
    (crate / "lib.rs").write_text("pub fn answer() -> u32 {\n    42\n}\n")
    (crate / "main.rs").write_text((crate / "main.rs").read_text() + "\n// changed\n")
    build = cache_farm.wait_for_build(force(cache_farm, "second"), timeout=600)
    assert build["results"] == 0, cache_farm.step_log(build, "cargo build")[-3000:]
    assert "Compiling second v0.1.0" in cache_farm.step_log(build, "cargo build")
    counts = cache_counts(cache_farm, build)
    assert (counts["hits"], counts["misses"], counts["errors"]) == (0, 0, 0), counts
    binary = fetch_binary(cache_farm, build, "second", tmp_path)
    assert run_in_image(built_chain.reference(HOST), tmp_path, binary.name,
                        []).startswith("deps-demo on x86_64:")


def test_other_features_of_a_dependency_miss_the_cache(cache_farm):
    # After the first project's build (above): regex with other features is another crate.
    build = cache_farm.wait_for_build(force(cache_farm, "features"), timeout=600)
    assert build["results"] == 0, cache_farm.step_log(build, "cargo build")[-3000:]
    counts = cache_counts(cache_farm, build)
    assert counts["misses"] >= 1, counts     # regex (and regex-syntax) compiled again
    assert counts["hits"] >= 1, counts       # serde_json and the rest were not


def test_two_projects_built_at_once_share_one_cache(cache_farm, built_chain, tmp_path):
    volume = compile_cache_volume_name(FARM, built_chain.reference(MIPSEL), MIPSEL)
    brids = [force(cache_farm, "twin-a"), force(cache_farm, "twin-b")]
    builds = [cache_farm.wait_for_build(brid, timeout=900) for brid in brids]
    for build in builds:
        assert build["results"] == 0, cache_farm.step_log(build, "cargo build")[-3000:]
        assert cache_counts(cache_farm, build)["errors"] == 0
    # They ran side by side (a pool of two), on the one cache of their toolchain and target.
    (a_start, a_end), (b_start, b_end) = ((b["started_at"], b["complete_at"]) for b in builds)
    assert a_start < b_end and b_start < a_end, "the two builds did not overlap"
    assert subprocess.run(["docker", "volume", "inspect", volume],
                          capture_output=True).returncode == 0
    for build, name in zip(builds, ("twin-a", "twin-b")):
        out = tmp_path / name
        out.mkdir()
        binary = fetch_binary(cache_farm, build, name, out)
        assert run_in_image(built_chain.reference(MIPSEL), out, binary.name,
                            [TARGETS[MIPSEL].qemu]).startswith("deps-demo on mips:")


def test_a_library_s_dependents_start_on_its_metadata_through_the_cache(cache_farm, built_chain,
                                                                       tmp_path):
    # chain -> middle -> bottom, two path dependencies (not the project's own crates:
    # both go through the cache). Cargo starts middle as soon as rustc says bottom's
    # metadata is written; a cache that handed rustc's output back only once bottom
    # is compiled (sccache does) would start middle after bottom's code generation,
    # and its metadata be written after bottom's rlib. The crate cache passes rustc's
    # output on as it is written.
    build = cache_farm.wait_for_build(force(cache_farm, "chain"), timeout=600)
    assert build["results"] == 0, cache_farm.step_log(build, "cargo build")[-3000:]
    counts = cache_counts(cache_farm, build)
    assert counts["misses"] == 2 and counts["errors"] == 0, counts
    deps = f"/cache/target/{HOST}/release/deps"
    listed = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "0",
         "-v", f"{cache_volume('chain', HOST, built_chain.reference(HOST), FARM)}:/cache:ro",
         "--entrypoint", "sh",
         built_chain.reference(HOST), "-c",
         f"stat -c '%.9Y %n' {deps}/libbottom-*.rlib {deps}/libmiddle-*.rmeta"],
        capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    written = {Path(name).name.split("-")[0]: float(when)
               for when, name in (line.split() for line in listed.stdout.splitlines())}
    assert written["libmiddle"] < written["libbottom"], written
    binary = fetch_binary(cache_farm, build, "chain", tmp_path)
    assert run_in_image(built_chain.reference(HOST), tmp_path, binary.name,
                        []).startswith("chain: ")


def test_a_dependency_whose_build_script_output_changed_misses_the_cache(cache_farm,
                                                                         built_chain, tmp_path):
    # settings reads an environment variable its build script sets (env!) and code the
    # script writes to OUT_DIR (include!). Its arguments, and so its key, stay the same
    # when either changes; what the compile read (dep-info: the variable's value, the
    # generated file's content) does not, so the cache's entry must not be used.
    source = cache_farm.directory / "generated"

    def build_and_run(expected_misses: int) -> str:
        build = cache_farm.wait_for_build(force(cache_farm, "generated"), timeout=600)
        assert build["results"] == 0, cache_farm.step_log(build, "cargo build")[-3000:]
        counts = cache_counts(cache_farm, build)
        assert (counts["hits"], counts["misses"], counts["errors"]) == \
            (0, expected_misses, 0), counts
        if expected_misses:
            assert re.search(r"^compiled: +settings$", compile_cache_log(cache_farm, build),
                             re.M)
        out = tmp_path / str(build["number"])
        out.mkdir()
        binary = fetch_binary(cache_farm, build, "generated", out)
        return run_in_image(built_chain.reference(HOST), out, binary.name, [])

    assert build_and_run(expected_misses=1) == "motd=one banner=one"
    set_generated(source, motd="two")
    assert build_and_run(expected_misses=1) == "motd=two banner=one"
    set_generated(source, banner="two")
    assert build_and_run(expected_misses=1) == "motd=two banner=two"
