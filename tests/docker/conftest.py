"""A farm whose builds run in containers of the real worker images."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rustfarm.images.targets import load_targets
from tests.support.farm import RunningFarm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
TARGETS = {t.triple: t for t in load_targets()}
POOL = "dk"


def farm_containers() -> list[str]:
    """Names of the containers this module's pool runs (buildbot-<worker>-<master>)."""
    listed = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listed if name.startswith(f"buildbot-{POOL}-")]


def wait_until_no_containers(timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while farm_containers() and time.monotonic() < deadline:
        time.sleep(0.5)
    return farm_containers()


def targets_yaml(built_chain, pool: str = POOL) -> str:
    lines = []
    for triple, target in TARGETS.items():
        runner = "native" if triple.startswith("x86_64-unknown-linux") else \
            ("image" if target.qemu else '""')
        lines.append(f"  {triple}: {{pool: {pool}, runner: {runner}, "
                     f"image: \"{built_chain.reference(triple)}\"}}\n")
    return "".join(lines)


def remove_cache_volumes(farm_name: str = "test") -> None:
    """Build caches outlive farms on purpose; tests that measure a cold build start clean."""
    listed = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                             f"name=rustfarm-{farm_name}-"], capture_output=True, text=True)
    names = listed.stdout.split()
    if names:
        subprocess.run(["docker", "volume", "rm", "-f", *names], capture_output=True)


@pytest.fixture(scope="module")
def docker_farm(built_chain, tmp_path_factory):
    remove_cache_volumes()
    root = tmp_path_factory.mktemp("dockerfarm")
    deps = root / "deps-demo"
    shutil.copytree(FIXTURES / "deps-demo", deps, ignore=shutil.ignore_patterns("target"))
    farm = RunningFarm(root, f"""\
schedule: {{nightly: false}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g}}
targets:
{targets_yaml(built_chain)}
projects:
  arch:
    source: {FIXTURES / 'hello-arch'}
    binaries: [hello-arch]
  deps:
    source: {deps}
    targets: [mipsel-unknown-linux-gnu]
    binaries: [deps-demo]
    test: false
""")
    farm.deps_source = deps
    try:
        yield farm.up()
    finally:
        farm.down()
    left = wait_until_no_containers()
    assert not left, f"containers left after the farm stopped: {left}"
