"""A restarted master registers its builders from what its database holds: an
unchanged builder keeps its id, tags and project and is this master's again; one
whose target moved to another pool gets its new tags; a removed project's builders
are no longer this master's; and builds run on the restarted farm."""

from __future__ import annotations

import pytest

from tests.support.farm import EXAMPLE, RunningFarm

from .conftest import HOST_TARGET, require_cargo
from .test_shutdown import FIXTURES


def farm_yaml(pool: str, projects: list[str]) -> str:
    sources = {"hello": f"{{source: {EXAMPLE}, binaries: [hello]}}",
               "slow": f"{{source: {FIXTURES / 'slow'}, test: false}}"}
    return ("schedule: {nightly: false}\nworkers:\n"
            "  local: {kind: local, count: 1}\n  spare: {kind: local, count: 1}\n"
            f"targets:\n  {HOST_TARGET}: {{pool: {pool}, runner: native}}\n"
            "projects:\n" + "".join(f"  {p}: {sources[p]}\n" for p in projects))


@pytest.fixture
def farm(tmp_path):
    require_cargo()
    running = RunningFarm(tmp_path, farm_yaml("local", ["hello", "slow"]))
    try:
        yield running.up()
    finally:
        running.down()


def builders(farm: RunningFarm) -> dict[str, dict]:
    return {b["name"]: {"id": b["builderid"], "tags": sorted(b["tags"]),
                        "projectid": b["projectid"], "masterids": b["masterids"],
                        "description": b["description"]}
            for b in farm.api("builders")["builders"] if not b["name"].startswith("__")}


def active_master(farm: RunningFarm) -> int:
    [master] = [m["masterid"] for m in farm.api("masters")["masters"] if m["active"]]
    return master


def rewrite(farm: RunningFarm, body: str) -> None:
    text = farm.config.read_text()
    farm.config.write_text(text[:text.index("schedule:")] + body)


def test_an_unchanged_farm_restarts_with_the_same_builders(farm):
    before = builders(farm)
    assert set(before) == {f"hello:{HOST_TARGET}", f"slow:{HOST_TARGET}"}
    assert all(b["masterids"] == [active_master(farm)] for b in before.values())
    assert "local" in before[f"hello:{HOST_TARGET}"]["tags"]

    farm.down()
    farm.up()
    assert builders(farm) == before
    farm.login()
    [brid] = farm.force("force-hello").values()
    assert farm.wait_for_build(brid, timeout=180)["results"] == 0


def test_a_restart_records_what_changed(farm):
    before = builders(farm)
    farm.down()
    rewrite(farm, farm_yaml("spare", ["hello"]))
    farm.up()

    after = builders(farm)
    hello = after[f"hello:{HOST_TARGET}"]
    assert hello["id"] == before[f"hello:{HOST_TARGET}"]["id"]
    assert "spare" in hello["tags"] and "local" not in hello["tags"]
    assert hello["masterids"] == [active_master(farm)]
    # The removed project's builder keeps its history but belongs to no master.
    assert after[f"slow:{HOST_TARGET}"]["masterids"] == []

    farm.login()
    [brid] = farm.force("force-hello").values()
    build = farm.wait_for_build(brid, timeout=180)
    assert build["results"] == 0
    worker = farm.api(f"workers/{build['workerid']}")["workers"][0]
    assert worker["name"].startswith("spare")
