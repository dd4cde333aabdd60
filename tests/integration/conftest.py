from __future__ import annotations

import shutil

import pytest

from tests.support.farm import EXAMPLE, RunningFarm

HOST_TARGET = "x86_64-unknown-linux-gnu"


def require_cargo() -> None:
    if not shutil.which("cargo"):
        from tests.support.docker_engine import unavailable
        unavailable("cargo is not installed (tests/run installs Debian's cargo when root)")


@pytest.fixture(scope="module")
def example_farm(tmp_path_factory):
    """A farm with local workers building the example project for the host."""
    require_cargo()
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), f"""\
schedule: {{nightly: false}}
workers:
  local: {{kind: local, count: 2}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello:
    source: {EXAMPLE}
    binaries: [hello]
""")
    try:
        yield farm.up()
    finally:
        farm.down()
