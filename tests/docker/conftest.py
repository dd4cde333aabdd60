"""A farm whose builds run in containers of the real worker images."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from rustfarm.images.engine import local_image
from rustfarm.images.recipes import current_catalog
from rustfarm.images.registry import push_images
from rustfarm.plumbing import connect
from rustfarm.targets import target_table
from tests.support.docker_engine import require_docker, unavailable
from rustfarm.workers.docker_volumes import cache_volume_name
from tests.support.containers import pool_containers
from tests.support.farm import RunningFarm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
TARGETS = {t.triple: t for t in target_table()}
RUNNABLE = [t.triple for t in target_table() if t.runs_here]
BIG_ENDIAN = [t.triple for t in target_table() if t.binary.endian == "big"]
POOL = "dk"
OLD_RUST = "x86_64-unknown-linux-gnu"     # the target the tests build with Rust 1.63
# Targets the size tests build for: std from source, linked by zig (musl) and by gcc.
SMALL = ["mips-unknown-linux-musl", "mipsel-unknown-linux-gnu"]


def farm_containers(pool: str = POOL) -> list[str]:
    """Names of the containers this run made for a pool (buildbot-<worker>-<master>)."""
    return pool_containers(pool)


def wait_until_no_containers(timeout: float = 60, pool: str = POOL) -> list[str]:
    deadline = time.monotonic() + timeout
    while farm_containers(pool) and time.monotonic() < deadline:
        time.sleep(0.5)
    return farm_containers(pool)


def targets_yaml(built_chain, pool: str = POOL) -> str:
    """Every target of the table on one docker pool; tests run as the table says."""
    lines = []
    for triple in TARGETS:
        images = [built_chain.reference(triple)]
        if triple == OLD_RUST:
            images.append(built_chain.reference(f"{triple}@1.63"))
        lines.append(f"  {triple}: {{pool: {pool}, image: [{', '.join(images)}]}}\n")
    return "".join(lines)


def up_for_the_module(farm: RunningFarm, pool: str, *more_pools: str,
                      cleanup: Callable[[], None] | None = None):
    """A module fixture's farm (``yield from`` it): up while the module's tests run, then
    down with its crate store removed (its crates are these tests' own), ``cleanup``
    run once its containers are gone (the module's volumes, servers), and no container
    of its pools left."""
    try:
        yield farm.up()
    finally:
        farm.down()
        shutil.rmtree(farm.state / "crates", ignore_errors=True)
        left = [name for each in (pool, *more_pools)
                for name in wait_until_no_containers(pool=each)]
        if cleanup is not None:
            cleanup()
    assert not left, f"containers left after the farm stopped: {left}"


def remove_cache_volumes(farm_name: str = "test") -> None:
    """Build caches outlive farms on purpose; tests that measure a cold build start clean."""
    listed = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                             f"name=rustfarm-{farm_name}-"], capture_output=True, text=True)
    names = listed.stdout.split()
    if names:
        subprocess.run(["docker", "volume", "rm", "-f", *names], capture_output=True)


def cache_volume(project: str, target: str, image: str, farm_name: str = "test") -> str:
    return cache_volume_name(farm_name, project, target, image)


@pytest.fixture(scope="module")
def docker_farm(built_chain, tmp_path_factory):
    remove_cache_volumes()
    root = tmp_path_factory.mktemp("dockerfarm")
    deps = root / "deps-demo"
    shutil.copytree(FIXTURES / "deps-demo", deps, ignore=shutil.ignore_patterns("target"))
    escape = root / "escape"
    shutil.copytree(FIXTURES / "escape", escape, ignore=shutil.ignore_patterns("target"))
    # A project whose own release profile links with fat LTO, as firmware teams' do.
    lto = root / "lto"
    shutil.copytree(FIXTURES / "hello-arch", lto, ignore=shutil.ignore_patterns("target"))
    with (lto / "Cargo.toml").open("a") as manifest:
        manifest.write('\n[profile.release]\nlto = true\ncodegen-units = 1\n')
    farm = RunningFarm(root, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g, standby: 0}}
targets:
{targets_yaml(built_chain)}
projects:
  arch:                             # edition 2024 with let chains, every target
    source: {FIXTURES / 'hello-arch'}
    binaries: [hello-arch]
  byteorder:                        # its test passes on big-endian machines only
    source: {FIXTURES / 'byte-order'}
    binaries: [byte-order]
    targets: [{', '.join(RUNNABLE)}]
    profile: dev
    strip: false
  deps:
    source: {deps}
    targets: [mipsel-unknown-linux-gnu, mips-unknown-linux-musl]
    binaries: [deps-demo]
    test: false
  legacy:                           # builds with Debian's Rust 1.63
    source: {FIXTURES / 'deps-demo'}
    targets: [{OLD_RUST}]
    binaries: [deps-demo]
    toolchain: "1.63"
  too-new:                          # edition 2024 pinned to Rust 1.63: refused at once
    source: {FIXTURES / 'hello-arch'}
    targets: [{OLD_RUST}]
    binaries: [hello-arch]
    toolchain: "1.63"
  tiny:                             # the farm's min-size profile (fat LTO against std)
    source: {FIXTURES / 'hello-arch'}
    binaries: [hello-arch]
    targets: [{', '.join(SMALL)}]
    profile: min-size
    test: false
  lto:
    source: {lto}
    binaries: [hello-arch]
    targets: [{', '.join(SMALL)}]
    test: false
  escape:                           # a hostile build script
    source: {escape}
    targets: [{OLD_RUST}]
    binaries: [escape]
    test: false
""")
    # The hostile build also tries the farm's own ports.
    (escape / "ports.txt").write_text(f"{farm.www_port} {farm.worker_port}\n")
    farm.deps_source = deps
    try:
        yield farm.up()
    finally:
        farm.down()
    left = wait_until_no_containers()
    assert not left, f"containers left after the farm stopped: {left}"


def pushed_image(registry, triple: str) -> str:
    """The target's current image (built on the system engine, never here), pushed to the
    farm's registry, as `farm images push` does; its reference."""
    require_docker()
    reference = current_catalog().reference(triple)
    client = connect()
    try:
        if local_image(client, reference) is None:
            unavailable(f"{reference} is not built (farm images build --target {triple})")
        push_images(client, registry.address, [triple])
    finally:
        client.close()
    return reference
