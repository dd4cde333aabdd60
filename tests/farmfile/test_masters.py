"""farm.yaml's masters and router: one master by default, several in Buildbot's
multi-master mode, and the settings `farm check` refuses because they would break it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from rustfarm.farmfile import FarmFileError, loads
from rustfarm.farmfile.model import FailoverSettings, MasterSettings, RouterSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"

BASE = f"""\
farm: {{name: demo, worker_port: 9000}}
www: {{port: 8000}}
workers:
  local: {{kind: local, count: 1}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local}}
projects:
  hello: {{source: {EXAMPLE}}}
"""
POSTGRES = "db: {url: 'postgresql://farm@127.0.0.1:5433/farm'}\n"
ROUTER = "router: {url: 'ws://127.0.0.1:8081/ws'}\n"


def load_text(path: Path, extra: str):
    return loads(BASE + textwrap.dedent(extra), path / "farm.yaml")


def problems(path: Path, extra: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        load_text(path, extra)
    return [str(p) for p in caught.value.problems]


def test_one_master_by_default_with_the_farm_s_ports(tmp_path):
    farm = load_text(tmp_path, "")
    assert farm.masters == (MasterSettings("master", 8000, 9000),)
    assert not farm.multi_master and farm.router is None


def test_a_number_of_masters_numbers_their_ports(tmp_path):
    farm = load_text(tmp_path, "masters: 2\n" + POSTGRES + ROUTER)
    assert farm.masters == (MasterSettings("master-1", 8000, 9000),
                            MasterSettings("master-2", 8001, 9001))
    assert farm.multi_master
    assert farm.router == RouterSettings("ws://127.0.0.1:8081/ws", "buildbot")
    assert (farm.router.host, farm.router.port, farm.router.path) == ("127.0.0.1", 8081, "/ws")


def test_a_list_of_masters_names_each(tmp_path):
    farm = load_text(tmp_path, POSTGRES + ROUTER + textwrap.dedent("""\
        masters:
          - {name: a, www_port: 8100, worker_port: 9100}
          - {name: b, host: build2.internal, www_port: 8100, worker_port: 9100}
        """))
    assert farm.masters == (MasterSettings("a", 8100, 9100),
                            MasterSettings("b", 8100, 9100, "build2.internal"))
    assert farm.master("b").host == "build2.internal"


def test_several_masters_on_sqlite_are_refused(tmp_path):
    found = problems(tmp_path, "masters: 2\n" + ROUTER)
    assert found == [f"{tmp_path / 'farm.yaml'}:9: masters: 2 masters share one database, "
                     "and SQLite serves one master: set db.url to a postgresql:// URL"]


def test_several_masters_without_a_router_are_refused(tmp_path):
    found = problems(tmp_path, "masters: 2\n" + POSTGRES)
    assert found == [f"{tmp_path / 'farm.yaml'}:9: masters: 2 masters pass their messages "
                     "through a WAMP router: add router: {url: ws://127.0.0.1:PORT/ws}"]


def test_masters_sharing_a_port_on_one_machine_are_refused(tmp_path):
    found = problems(tmp_path, POSTGRES + ROUTER + textwrap.dedent("""\
        masters:
          - {name: a, www_port: 8100, worker_port: 9100}
          - {name: a, www_port: 9100, worker_port: 9101}
        """))
    assert found == [
        f"{tmp_path / 'farm.yaml'}:13: masters[1]: master 'a''s web UI port 9100 is already "
        "master 'a''s worker port",
        f"{tmp_path / 'farm.yaml'}:13: masters[1].name: two masters are named 'a'"]


def test_numbered_masters_whose_ports_overlap_are_refused(tmp_path):
    text = BASE.replace("worker_port: 9000", "worker_port: 8001")
    with pytest.raises(FarmFileError) as caught:
        loads(text + "masters: 2\n" + POSTGRES + ROUTER, tmp_path / "farm.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'farm.yaml'}:9: masters: master 'master-2''s web UI port 8001 is "
        "already master 'master-1''s worker port"]


@pytest.mark.parametrize("value, message", [
    ("0", "masters: must be at least 1, not 0"),
    ("17", "masters: must be at most 16, not 17"),
    ("many", "masters: must be a number of masters or a list of them (name, host, www_port, "
            "worker_port), not text"),
    ("[{name: a, port: 1}]", "masters[0].port: unknown key"),
    ("[{name: A}]", "masters[0].name: names use lower-case letters, digits, '-', '_' and '.'"),
])
def test_bad_masters_values(tmp_path, value, message):
    found = problems(tmp_path, f"masters: {value}\n")
    assert found == [f"{tmp_path / 'farm.yaml'}:9: {message}"]


@pytest.mark.parametrize("router, message", [
    ("{url: 'http://127.0.0.1:8081/ws'}",
     "router.url: must be a ws:// or wss:// URL such as ws://127.0.0.1:8081/ws"),
    ("{url: 'ws://8.8.8.8:8081/ws'}",
     "router.url: 8.8.8.8 is a public address; Buildbot's masters join the router without "
     "authentication, so keep it on loopback or a private network"),
    ("{url: 'ws://10.0.0.5:8081/ws', realm: 'Farm Realm'}",
     "router.realm: realms use lower-case letters, digits, '_' and '.'"),
    ("{realm: farm}", "router.url: missing required key"),
])
def test_bad_router_values(tmp_path, router, message):
    found = problems(tmp_path, "masters: 2\n" + POSTGRES + f"router: {router}\n")
    assert [p.split(": ", 1)[1] for p in found if "router" in p] == [message]


def test_a_dead_master_is_given_up_after_45_seconds_by_default(tmp_path):
    farm = load_text(tmp_path, "masters: 2\n" + POSTGRES + ROUTER)
    assert farm.failover == FailoverSettings(master_timeout=45)


def test_failover_master_timeout_is_set_in_seconds(tmp_path):
    farm = load_text(tmp_path, "masters: 2\n" + POSTGRES + ROUTER +
                     "failover: {master_timeout: 20}\n")
    assert farm.failover.master_timeout == 20


@pytest.mark.parametrize("failover, message", [
    ("{master_timeout: 5}", "failover.master_timeout: must be at least 15, not 5 "
                            "(seconds; Buildbot itself waits 600)"),
    ("{master_timeout: 900}", "failover.master_timeout: must be at most 600, not 900 "
                              "(seconds; Buildbot itself waits 600)"),
    ("{master_timeout: soon}", "failover.master_timeout: must be a whole number, not text"),
    ("{timeout: 30}", "failover.timeout: unknown key"),
])
def test_bad_failover_values(tmp_path, failover, message):
    found = problems(tmp_path, "masters: 2\n" + POSTGRES + ROUTER + f"failover: {failover}\n")
    assert found == [f"{tmp_path / 'farm.yaml'}:12: {message}"]


def test_farm_check_prints_the_refusal_without_a_traceback(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_text(BASE + "masters: 2\n" + ROUTER)
    done = subprocess.run([str(REPO / ".venv" / "bin" / "farm"), "check", "--config",
                           str(config)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "farm.yaml:9: masters: 2 masters share one database" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
