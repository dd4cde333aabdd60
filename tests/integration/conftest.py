from __future__ import annotations

import shutil

import pytest

# HOST_TARGET: the integration tests import it from here.
from tests.support.farm import EXAMPLE, HOST_TARGET, RunningFarm, local_farm_yaml  # noqa: F401


def require_cargo() -> None:
    if not shutil.which("cargo"):
        from tests.support.docker_engine import unavailable
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
