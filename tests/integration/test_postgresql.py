"""A farm whose database is PostgreSQL (a private server of Debian's postgresql, started
here): builder pages offer their force buttons, forced builds run, and a restart keeps
the history."""

from __future__ import annotations

import pytest

from tests.support.docker_engine import unavailable
from tests.support.farm import EXAMPLE, RunningFarm
from tests.support.postgres import PrivateCluster, ensure_server

from .conftest import HOST_TARGET, require_cargo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgresql():
    reason = ensure_server()
    if reason:
        unavailable(reason)
    try:
        cluster = PrivateCluster().start()
    except RuntimeError as err:
        unavailable(f"a private PostgreSQL server did not start: {err}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def pg_farm(tmp_path_factory, postgresql):
    require_cargo()
    url = postgresql.create_database("farm")
    farm = RunningFarm(tmp_path_factory.mktemp("pg"), f"""\
db: {{url: "{url}"}}
schedule: {{nightly: "03:00"}}
workers: {{local: {{kind: local, count: 2}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
  i686-unknown-linux-gnu: {{pool: local}}
projects:
  hello: {{source: {EXAMPLE}}}
  other: {{source: {EXAMPLE}, binaries: [hello], test: false}}
""")
    try:
        yield farm.up()
    finally:
        farm.down()


def test_the_farm_keeps_its_state_in_postgresql(pg_farm, postgresql):
    import psycopg
    with psycopg.connect(postgresql.url("farm")) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM builders")}
    assert f"hello:{HOST_TARGET}" in names and "other:i686-unknown-linux-gnu" in names
    assert not (pg_farm.state / "master" / "state.sqlite").exists()


def test_builder_pages_offer_their_force_buttons(pg_farm):
    # Buildbot passes this path's builder id to PostgreSQL as text: see master/database.py.
    builders = {b["name"]: b["builderid"] for b in pg_farm.api("builders")["builders"]}
    page = pg_farm.api(f"builders/{builders[f'hello:{HOST_TARGET}']}/forceschedulers",
                       order="name")["forceschedulers"]
    assert [s["name"] for s in page] == ["force-hello", "force-hello-builder", "verify-hello"]


def test_a_forced_build_runs_and_a_restart_keeps_it(pg_farm):
    farm = pg_farm
    builder = {b["name"]: b["builderid"]
               for b in farm.api("builders")["builders"]}[f"hello:{HOST_TARGET}"]
    farm.login()
    body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": {"builderid": str(builder)}}
    reply = farm.session.post(f"{farm.url}api/v2/forceschedulers/force-hello-builder",
                              json=body, timeout=60, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    [brid] = reply.json()["result"][1].values()
    build = farm.wait_for_build(brid)
    assert build["results"] == 0, farm.step_log(build, "cargo build")

    farm.down()
    farm.up()
    kept = farm.api("builds", buildrequestid=brid)["builds"]
    assert [b["buildid"] for b in kept] == [build["buildid"]] and kept[0]["results"] == 0
    farm.login()
    [again] = farm.force("force-other", targets=[HOST_TARGET]).values()
    assert farm.wait_for_build(again)["results"] == 0
    assert "Traceback" not in (farm.state / "master" / "twistd.log").read_text()
