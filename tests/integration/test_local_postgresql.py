"""A farm whose PostgreSQL `farm up` runs itself (db: {server: local}): Debian's server
with its data in the state directory, used by the real master, stopped by `farm down`
and found again with everything it held by the next `farm up`; its password is in the
secret store only. And a server of one's own whose password `farm db-password` stores."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rustfarm.cli.processes import process_alive
from tests.support.farm import EXAMPLE, RunningFarm, farm_command
from tests.support.postgres import PrivateCluster
from tests.support.registry import free_port

from .conftest import HOST_TARGET, reachable_directory, require_cargo
from .test_shutdown import FIXTURES, wait_for_step

SLOW = FIXTURES / "slow"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_pg_farm(postgresql_installed):
    require_cargo()
    directory = reachable_directory("rustfarm-localpg-")
    port = free_port()
    farm = RunningFarm(directory, f"""\
db: {{server: local, port: {port}}}
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello: {{source: {EXAMPLE}, test: false}}
  slow: {{source: {SLOW}, test: false}}
""")
    farm.db_port = port
    try:
        yield farm.up()
    finally:
        farm.down()
        shutil.rmtree(directory, ignore_errors=True)


def server_pid(farm: RunningFarm) -> int | None:
    try:
        pid = int((farm.state / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_alive(pid) else None


def db_password(farm: RunningFarm) -> str:
    return (farm.state / "secrets" / "db-password").read_text().strip()


def test_farm_up_runs_postgresql_in_the_state_directory(local_pg_farm):
    import psycopg
    farm = local_pg_farm
    pid = server_pid(farm)
    assert pid, farm.up_output
    assert "initialising a PostgreSQL cluster" in farm.up_output
    assert Path(f"/proc/{pid}/cwd").resolve() == (farm.state / "postgres" / "data").resolve()
    if os.geteuid() == 0:
        assert (farm.state / "postgres").owner() == "postgres"
    port = farm.db_port
    with psycopg.connect(host="127.0.0.1", port=port, user="rustfarm", dbname="rustfarm",
                         password=db_password(farm)) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM builders")}
    assert f"hello:{HOST_TARGET}" in names
    assert not (farm.state / "master" / "state.sqlite").exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="rustfarm", dbname="rustfarm",
                        password="not-the-password").close()
    status = farm.farm("status").stdout
    assert "database: PostgreSQL 1" in status and f"running (pid {pid}) on 127.0.0.1:{port}" \
        in status, status


def test_a_build_outlives_farm_down_and_up(local_pg_farm):
    farm = local_pg_farm
    farm.login()
    brid = farm.force("force-hello", targets=[HOST_TARGET])[f"hello:{HOST_TARGET}"]
    build = farm.wait_for_build(brid)
    assert build["results"] == 0, farm.step_log(build, "cargo build")
    before = server_pid(farm)

    down = farm.farm("down").stdout
    assert down.index("stopped the master") < down.index("stopped PostgreSQL"), down
    assert not process_alive(before) and server_pid(farm) is None
    assert "PostgreSQL not running" in farm.farm("status", check=False).stdout

    farm.up()
    assert "initialising" not in farm.up_output and "starting PostgreSQL" in farm.up_output
    assert server_pid(farm) not in (None, before)
    again = farm.api(f"builds/{build['buildid']}")["builds"]
    assert [(b["buildrequestid"], b["results"]) for b in again] == [(brid, 0)]


def test_the_password_is_in_the_secret_store_only(local_pg_farm):
    farm = local_pg_farm
    password = db_password(farm)
    assert len(password) >= 24
    assert password not in farm.config.read_text() and password not in farm.up_output
    master_log = (farm.state / "master" / "twistd.log").read_text()
    assert "Setting up database with URL 'postgresql://rustfarm:xxxx@127.0.0.1:" in master_log
    # Every file of the state directory but the secret store: logs, the server's log
    # and data, the workers' directories, the master's.
    found = []
    for path in farm.state.rglob("*"):
        if path.is_file() and not path.is_relative_to(farm.state / "secrets"):
            if password.encode() in path.read_bytes():
                found.append(path)
    assert found == []
    builds = farm.api("builds")["builds"]
    assert builds
    for build in builds:
        properties = farm.api(f"builds/{build['buildid']}/properties")["properties"]
        assert password not in json.dumps(properties)
        for step in farm.steps(build):
            for log in farm.api(f"steps/{step['stepid']}/logs")["logs"]:
                text = farm.session.get(f"{farm.url}api/v2/logs/{log['logid']}/raw",
                                        timeout=30).text
                assert password not in text


def test_an_external_server_s_password_comes_from_farm_db_password(postgresql_installed):
    import psycopg
    cluster = PrivateCluster().start()
    directory = reachable_directory("rustfarm-extpg-")
    try:
        password = "an external p@ss/word"
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE ROLE farm LOGIN PASSWORD 'an external p@ss/word'")
            connection.execute("CREATE DATABASE farm OWNER farm")
        farm = RunningFarm(directory, f"""\
db: {{url: "postgresql://farm@127.0.0.1:{cluster.port}/farm"}}
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello: {{source: {EXAMPLE}, test: false}}
""")
        # Without the password the master cannot log in, and says so.
        refused = farm.farm("up", check=False)
        assert refused.returncode != 0
        assert "no password supplied (`farm db-password` stores the database password)" \
            in refused.stderr, refused.stdout + refused.stderr
        farm.down()
        stored = farm.farm("db-password", "--password-stdin", input=password + "\n")
        assert password not in stored.stdout + stored.stderr
        farm.up()
        assert farm.api("builders")["builders"]
        assert "postgresql://farm:xxxx@127.0.0.1:" in \
            (farm.state / "master" / "twistd.log").read_text()
        assert not (farm.state / "postgres").exists()
        for path in farm.state.rglob("*"):
            if path.is_file() and not path.is_relative_to(farm.state / "secrets"):
                assert password.encode() not in path.read_bytes(), path
    finally:
        if (directory / "farm.yaml").exists():
            farm_command(directory / "farm.yaml", "down", check=False)
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_farm_up_names_the_directory_the_server_user_cannot_enter(tmp_path,
                                                                  postgresql_installed):
    if os.geteuid() != 0:
        pytest.skip("only root's farm runs PostgreSQL as another user")
    blocked = next(p for p in reversed(tmp_path.parents) if not p.stat().st_mode & 0o001)
    farm = RunningFarm(tmp_path, f"""\
db: {{server: local, port: {free_port()}}}
workers: {{local: {{kind: local, count: 1}}}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello: {{source: {EXAMPLE}}}
""")
    refused = farm.farm("up", check=False)
    assert refused.returncode != 0
    assert (f"PostgreSQL runs as user 'postgres' (it refuses root), who cannot enter "
            f"{blocked}: let it (chmod o+x {blocked}) or put farm.state_dir where it can"
            ) in refused.stderr, refused.stderr
    assert not (farm.state / "postgres" / "data").exists()
    assert not (farm.state / "master" / "twistd.pid").exists()


def test_a_build_outlives_a_restart_of_the_database(local_pg_farm):
    """PostgreSQL restarted while a build compiles (a failover, an upgrade): the
    master's connections are made again, the build ends and is recorded, and its
    request is not lost; the next build runs as before."""
    from rustfarm.cli.postgres import Cluster
    farm = local_pg_farm
    farm.login()
    [brid] = farm.force("force-slow", targets=[HOST_TARGET]).values()
    running = wait_for_step(farm, brid, "cargo build", timeout=120)
    before = server_pid(farm)
    cluster = Cluster(farm.state / "postgres", "127.0.0.1", farm.db_port)
    assert cluster.stop()
    cluster.start()
    assert server_pid(farm) not in (None, before)
    done = farm.wait_for_build(brid, timeout=300)
    assert done["buildid"] == running["buildid"]
    assert done["results"] == 0, farm.step_log(done, "cargo build")
    assert farm.api(f"buildrequests/{brid}")["buildrequests"][0]["complete"]
    [again] = farm.force("force-hello", targets=[HOST_TARGET]).values()
    assert farm.wait_for_build(again, timeout=180)["results"] == 0
