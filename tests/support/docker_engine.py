"""A real Docker engine for tests: found, or installed and started when we are root.

Tests that need Docker call :func:`require_docker`. Where no engine can exist the
test is skipped with the reason; under CI (``CI=true``) it fails instead, so a
missing engine can never turn a CI run green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .containers import note_existing

SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/tmp/rustfarm-dockerd.log")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it under CI."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def engine_answers() -> bool:
    docker = shutil.which("docker")
    if not docker or not SOCKET.exists():
        return False
    probe = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=30)
    return probe.returncode == 0


def _start_engine() -> str | None:
    """Install and start dockerd; returns why it could not, or None."""
    if os.geteuid() != 0:
        return "no Docker engine answers and we are not root to start one"
    if not shutil.which("dockerd"):
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "docker.io"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True, text=True)
        if installed.returncode != 0:
            return f"installing docker.io failed: {installed.stderr.strip()[-300:]}"
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            return None
        time.sleep(0.5)
    return f"dockerd did not answer within 60 s (see {DOCKERD_LOG})"


def ensure_engine() -> str | None:
    """Make sure an engine answers; returns the reason when none can."""
    if engine_answers():
        return None
    return _start_engine()


def require_docker() -> None:
    reason = ensure_engine()
    if reason:
        unavailable(reason)
    note_existing()
