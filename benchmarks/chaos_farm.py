"""The chaos benchmark's farm (benchmarks/chaos.py): its farm.yaml, and what it checks
is left once the farm has stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.soak import PROJECTS as SOAK_PROJECTS, TARGETS
from benchmarks.soak import containers as soak_containers
from rustfarm.images.recipes import current_catalog
from rustfarm.plumbing import file_sha256
from rustfarm.workers.docker_volumes import upload_volume_prefix
from tests.support.registry import free_port

NAME = "chaos"
PROJECTS = {**SOAK_PROJECTS, "deps": "deps-demo"}
UPLOAD_TARGET = "mips-unknown-linux-musl"


def farm_yaml(root: Path, engines: str = "", store: Path | None = None
              ) -> tuple[str, dict[str, str]]:
    """The farm's farm.yaml and each master's URL; ``engines``: the pool's lines naming
    its engines (benchmarks/chaos_faults.py), ``store``: its artifacts directory."""
    catalog = current_catalog()
    www = {"first": free_port(), "second": free_port()}
    targets = "".join(f"  {t}: {{pool: {NAME}, image: \"{catalog.reference(t)}\"}}\n"
                      for t in TARGETS)
    projects = "".join(f"  {name}: {{source: 'file://{root / name}.git', poll_interval: 5,"
                       f" test: false, profile: dev}}\n" for name in PROJECTS)
    return (f"farm: {{name: {NAME}}}\n"
            f"www: {{users: [admin]}}\n"
            f"db: {{server: local, port: {free_port()}}}\n"
            "masters:\n"
            + "".join(f"  - {{name: {m}, www_port: {port}, worker_port: {free_port()}}}\n"
                      for m, port in www.items())
            + f'router: {{url: "ws://127.0.0.1:{free_port()}/ws"}}\n'
            "schedule: {nightly: false}\n"
            f"compile: {{targets: [{UPLOAD_TARGET}], queue: 20}}\n"
            + (f"artifacts: {{directory: {store}}}\n" if store else "")
            + f"workers:\n  {NAME}:\n    kind: docker\n    count: 4\n    memory: 2g\n{engines}"
            f"targets:\n{targets}projects:\n{projects}"), \
        {m: f"http://127.0.0.1:{port}/" for m, port in www.items()}


def containers() -> list[str]:
    return soak_containers(f"buildbot-{NAME}-")


def upload_volumes() -> list[str]:
    prefix = upload_volume_prefix(NAME)
    listed = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True,
                            text=True).stdout.split()
    return [name for name in listed if name.startswith(prefix)]


def damaged_releases(artifacts: Path) -> int:
    """Targets whose SHA256SUMS names an archive that is missing or has another digest."""
    damaged = 0
    for sums in artifacts.glob("*/*/*/SHA256SUMS"):
        for line in sums.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            path = sums.parent / name.lstrip("*")
            damaged += not path.is_file() or file_sha256(path) != digest
    return damaged
