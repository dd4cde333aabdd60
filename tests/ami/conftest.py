"""Fixtures for the AMI tests: a real Docker engine, a real local registry and
tiny worker images pushed to it (see harness.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.docker_engine import require_docker, unavailable

from . import harness


@pytest.fixture(scope="session")
def docker_engine() -> None:
    require_docker()


@pytest.fixture(scope="session")
def busybox_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("busybox")
    try:
        harness.fetch_busybox(cache)
    except (subprocess.CalledProcessError, FileNotFoundError, StopIteration) as error:
        unavailable(f"cannot get Debian's busybox-static for the tiny worker image: {error}")
    return cache


@pytest.fixture(scope="session")
def tiny_worker_images(registry, busybox_cache):
    """Build tiny worker images on demand: ``tiny_worker_images(hold_seconds=3)``."""
    built: dict[tuple[int, int], str] = {}

    def image(hold_seconds: int = 0, exit_status: int = 0) -> str:
        key = (hold_seconds, exit_status)
        if key not in built:
            built[key] = harness.build_tiny_worker_image(
                registry.address, busybox_cache,
                hold_seconds=hold_seconds, exit_status=exit_status)
        return built[key]

    yield image
    for reference in built.values():
        harness.remove_local_image(reference)
