"""Fixtures shared by every test folder: a Docker client and the built image chain.

Building reuses whatever the engine already holds (an image whose content tag
exists is never rebuilt), so only the first run on a machine pays for it.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import pytest

from rustfarm.images.build import BuildOutcome, build_images
from rustfarm.plumbing import connect
from rustfarm.progress import Progress
from rustfarm.images.recipes import Catalog, current_catalog
from tests.support.containers import left_before
from tests.support.docker_engine import require_docker
from tests.support.registry import LocalRegistry, ensure_registry_binary


@dataclass
class BuiltChain:
    catalog: Catalog
    outcomes: list[BuildOutcome]
    output: str
    seconds: float

    def reference(self, name: str) -> str:
        return self.catalog.reference(name)


@pytest.fixture(scope="session")
def docker_client():
    require_docker()
    client = connect()
    yield client
    client.close()


# Besides every image of the default toolchain: one of Debian's Rust 1.63, for
# the tests of projects that pin it.
OTHER_TOOLCHAIN_IMAGES = ["x86_64-unknown-linux-gnu@1.63"]


@pytest.fixture(scope="session")
def built_chain(docker_client) -> BuiltChain:
    """Every image built (or already present), as `farm images build` does it."""
    output = io.StringIO()
    started = time.monotonic()
    catalog = current_catalog()
    wanted = [r.key for r in catalog.closure()] + OTHER_TOOLCHAIN_IMAGES
    outcomes = build_images(docker_client, wanted, catalog=catalog,
                            progress=Progress(out=output, heartbeat=60))
    return BuiltChain(catalog, outcomes, output.getvalue(), time.monotonic() - started)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A real local registry (Debian's docker-registry) on loopback."""
    require_docker()
    ensure_registry_binary()
    started = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    yield started
    started.stop()


def pytest_terminal_summary(terminalreporter):
    """Name the containers an earlier, interrupted run left: not this run's to remove."""
    left = left_before()
    if left:
        terminalreporter.write_line(
            f"containers an earlier run left on the engine (not counted, not removed): "
            f"{', '.join(left)}; remove them with: docker rm -f {' '.join(left)}", yellow=True)


@pytest.fixture(scope="module")
def forge_api():
    """A forge's API for the module's tests: a recording stand-in (tests/support/forge_api.py)."""
    from tests.support.forge_api import RecordingForge
    forge = RecordingForge().start()
    yield forge
    forge.stop()
