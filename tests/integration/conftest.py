from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rustfarm.cli.postgres import ensure_installed
from tests.support.docker_engine import unavailable
# HOST_TARGET: the integration tests import it from here.
from tests.support.farm import (EXAMPLE, HOST_TARGET, REPO, RunningFarm,  # noqa: F401
                                local_farm_yaml)


def require_cargo() -> None:
    if not shutil.which("cargo"):
        unavailable("cargo is not installed (tests/run installs Debian's cargo when root)")


@pytest.fixture(scope="module")
def example_farm(tmp_path_factory):
    """A farm with local workers building the example project for the host."""
    require_cargo()
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(f"""\
  hello:
    source: {EXAMPLE}
    binaries: [hello]
"""))
    try:
        yield farm.up()
    finally:
        farm.down()


def reachable_directory(prefix: str) -> Path:
    """A directory under /tmp that the postgres user may enter (pytest's own are root's
    alone, and PostgreSQL runs as postgres when the farm runs as root)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def postgresql_installed():
    """Debian's postgresql, which `farm up` runs for `db: {server: local}`."""
    reason = ensure_installed()
    if reason:
        unavailable(reason)


@pytest.fixture(scope="module")
def router_installed():
    """crossbar in .router-venv, the WAMP router `farm up` runs for several masters."""
    done = subprocess.run([str(REPO / "tools" / "bootstrap"), "--router"], capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        unavailable(f"crossbar could not be installed: {done.stderr[-500:]}")
