"""`farm reload` applies an edited farm.yaml to the running master: new projects'
builders appear while a running build goes on to success; an invalid file is
refused with its problems and the farm keeps its configuration."""

from __future__ import annotations

import pytest

from tests.support.farm import EXAMPLE, RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET, require_cargo
from .test_shutdown import FIXTURES, farm_processes, wait_for_step

BODY = local_farm_yaml(f"  slow: {{source: {FIXTURES / 'slow'}, test: false}}\n", workers=1,
                       targets=f"  {HOST_TARGET}: {{pool: local}}\n")


@pytest.fixture
def farm(tmp_path):
    require_cargo()
    running = RunningFarm(tmp_path, BODY)
    try:
        yield running.up()
    finally:
        running.down()


def builder_names(farm: RunningFarm) -> set[str]:
    return {b["name"] for b in farm.api("builders")["builders"]
            if not b["name"].startswith("__")}


def test_reload_adds_builders_while_a_build_runs_on(farm):
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    running = wait_for_step(farm, brid, "cargo build")

    farm.config.write_text(farm.config.read_text() + f"""\
  hello: {{source: {EXAMPLE}, binaries: [hello]}}
""")
    reloaded = farm.farm("reload")
    assert "the master now runs farm.yaml" in reloaded.stdout
    assert builder_names(farm) == {f"slow:{HOST_TARGET}", f"hello:{HOST_TARGET}"}

    done = farm.wait_for_build(brid, timeout=180)
    assert done["buildid"] == running["buildid"], "the running build was not interrupted"
    assert done["results"] == 0
    # The new project builds, on the worker the running build just used.
    farm.session.cookies.clear()
    farm.login()
    [new] = farm.force("force-hello").values()
    assert farm.wait_for_build(new, timeout=180)["results"] == 0


def test_an_invalid_file_is_refused_and_the_farm_keeps_working(farm):
    before = builder_names(farm)
    farm.config.write_text(farm.config.read_text().replace("{pool: local}", "{pool: lcoal}"))
    refused = farm.farm("reload", check=False)
    assert refused.returncode == 2
    assert "farm.yaml:" in refused.stderr and "lcoal" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert builder_names(farm) == before
    # What `farm check` refuses, `farm reload` refuses with its line, before the master
    # sees it: 1,101 builders are too many for the one worker.
    good = farm.config.read_text().replace("{pool: lcoal}", "{pool: local}")
    farm.config.write_text(good + "".join(f"  p{i:04d}: {{source: {EXAMPLE}}}\n"
                                          for i in range(1100)))
    refused = farm.farm("reload", check=False)
    assert (refused.returncode, refused.stderr.splitlines()) == (1, [
        "farm: workers.local: 1101 builders need at least 2 workers "
        "(a worker serves at most 1000 builders; the pool has 1)"])
    assert builder_names(farm) == before
    farm.config.write_text(good.replace("{pool: local}", "{pool: lcoal}"))
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    assert farm.wait_for_build(brid, timeout=180)["results"] == 0
    # Nor does the broken file keep the farm from stopping.
    down = farm.farm("down", check=False)
    assert down.returncode == 2 and "lcoal" in down.stderr
    assert "stopped the master" in down.stdout
    assert farm_processes(farm) == []


def test_reload_of_a_farm_that_is_not_running(tmp_path):
    stopped = RunningFarm(tmp_path, BODY)
    refused = stopped.farm("reload", check=False)
    assert refused.returncode == 1
    assert "the farm is not running; `farm up` starts it" in refused.stderr
