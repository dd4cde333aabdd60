"""farm.yaml's db section: SQLite by default, a PostgreSQL server of one's own, or one
`farm up` runs itself (server: local); the password is never farm.yaml's."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rustfarm.cli.main import main
from rustfarm.farmfile import FarmFileError, loads

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
ROUTER = "router: {url: 'ws://127.0.0.1:8081/ws'}\n"


def load_text(path: Path, extra: str):
    return loads(BASE + textwrap.dedent(extra), path / "farm.yaml")


def problems(path: Path, extra: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        load_text(path, extra)
    return [str(p) for p in caught.value.problems]


def test_a_local_server_on_its_default_port(tmp_path):
    db = load_text(tmp_path, "db: {server: local}\n").db
    assert db.url == "postgresql://rustfarm@127.0.0.1:5433/rustfarm"
    assert db.runs_locally and db.is_postgresql and not db.has_password
    assert (db.host, db.port, db.user, db.database) == ("127.0.0.1", 5433, "rustfarm", "rustfarm")
    assert db.warnings == ()


def test_a_local_server_on_a_port_of_its_own(tmp_path):
    db = load_text(tmp_path, "db: {server: local, port: 6543}\n").db
    assert db.url == "postgresql://rustfarm@127.0.0.1:6543/rustfarm" and db.runs_locally


def test_a_local_server_named_by_its_url(tmp_path):
    db = load_text(tmp_path, "db: {server: local, url: 'postgresql://farm@localhost:5440/builds'}\n"
                   ).db
    assert (db.host, db.port, db.user, db.database) == ("localhost", 5440, "farm", "builds")
    assert db.runs_locally


def test_a_server_of_one_s_own_is_not_run_by_the_farm(tmp_path):
    db = load_text(tmp_path, "db: {url: 'postgresql://farm@10.0.0.2/farm'}\n").db
    assert not db.runs_locally and db.server == "" and db.warnings == ()


@pytest.mark.parametrize("extra, message", [
    ("db: {server: remote}\n",
     "9: db.server: must be 'local' (farm up runs PostgreSQL itself), or left out for a "
     "server of your own"),
    ("db: {server: local, url: 'sqlite:///x.sqlite'}\n",
     "9: db.server: a local server is PostgreSQL: make db.url a postgresql://USER@127.0.0.1:"
     "PORT/DATABASE URL, or leave it out (the default is "
     "postgresql://rustfarm@127.0.0.1:5433/rustfarm)"),
    ("db: {server: local, url: 'postgresql://farm@10.0.0.2:5433/farm'}\n",
     "9: db.url: farm up runs the local server on loopback only: the host must be 127.0.0.1, "
     "not 10.0.0.2"),
    ("db: {server: local, url: 'postgresql://farm@127.0.0.1/farm'}\n",
     "9: db.url: a local server needs its port in the URL, such as "
     "postgresql://rustfarm@127.0.0.1:5433/rustfarm"),
    ("db: {server: local, url: 'postgresql://farm@/farm'}\n",
     "9: db.url: farm up runs the local server on loopback only: the host must be 127.0.0.1, "
     "not a Unix socket"),
    ("db: {server: local, url: 'postgresql://farm:hunter22@127.0.0.1:5433/farm'}\n",
     "9: db.url: farm up makes the local server's password and keeps it in the secret store "
     "(secrets/db-password): remove it from the URL"),
    ("db: {server: local, url: 'postgresql://farm@127.0.0.1:5433/my-db'}\n",
     "9: db.url: the local server's database name must be lower-case letters, digits and "
     "'_', not 'my-db'"),
    ("db: {server: local, port: 5434, url: 'postgresql://farm@127.0.0.1:5433/farm'}\n",
     "9: db.port: the port is db.url's: give it there, not twice"),
    ("db: {url: 'postgresql://farm@10.0.0.2/farm', port: 5434}\n",
     "9: db.port: only with server: local (the port of a server of your own is db.url's)"),
    ("db: {server: local, port: 70000}\n",
     "9: db.port: must be at most 65535, not 70000"),
])
def test_what_farm_check_refuses(tmp_path, extra, message):
    found = problems(tmp_path, extra)
    assert [p.split(":", 1)[1].lstrip() for p in found
            if p.startswith(str(tmp_path))] == [message], found


def test_the_local_server_s_port_is_its_own(tmp_path):
    found = problems(tmp_path, "db: {server: local, port: 9000}\n")
    assert found == [f"{tmp_path / 'farm.yaml'}:9: db.port: the local database server's port "
                     "9000 is already the workers' (farm.worker_port)"]
    found = problems(tmp_path, "db: {server: local, port: 8001}\nmasters: 2\n" + ROUTER)
    assert found == [f"{tmp_path / 'farm.yaml'}:10: masters: master 'master-2''s web UI port "
                     "8001 is already the local database server's (db)"]


def test_a_master_on_another_machine_cannot_use_the_local_server(tmp_path):
    found = problems(tmp_path, "db: {server: local}\n" + ROUTER + textwrap.dedent("""\
        masters:
          - {name: a}
          - {name: b, host: build2.internal}
        """))
    assert found == [f"{tmp_path / 'farm.yaml'}:13: masters[1].host: a master on another "
                     "machine cannot reach the PostgreSQL server farm up runs on this one's "
                     "loopback (db.server: local)"]


def test_several_masters_share_the_local_server(tmp_path):
    farm = load_text(tmp_path, "db: {server: local}\nmasters: 2\n" + ROUTER)
    assert farm.multi_master and farm.db.runs_locally


def test_a_password_in_the_url_works_but_farm_check_warns(tmp_path, capsys):
    farm = load_text(tmp_path, "db:\n  url: 'postgresql://farm:hunter22@10.0.0.2/farm'\n")
    assert farm.db.has_password
    [warning] = farm.db.warnings
    assert str(warning) == (f"{tmp_path / 'farm.yaml'}:10: db.url: carries the database "
                            "password, and farm.yaml may end up in a repository: store it with "
                            "`farm db-password` and remove it from the URL")
    config = tmp_path / "farm.yaml"
    config.write_text(BASE + "db:\n  url: 'postgresql://farm:hunter22@10.0.0.2/farm'\n")
    assert main(["--config", str(config), "check"]) == 0
    out, err = capsys.readouterr()
    assert "fine" in out
    assert err.splitlines() == [f"warning: {warning}"]


def test_farm_db_password_stores_it_in_the_secret_store(tmp_path, monkeypatch, capsys):
    config = tmp_path / "farm.yaml"
    config.write_text(BASE + "db: {url: 'postgresql://farm@10.0.0.2/farm'}\n")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("s3cret p@ss/word\n"))
    assert main(["--config", str(config), "db-password", "--password-stdin"]) == 0
    stored = tmp_path / ".farm" / "secrets" / "db-password"
    assert stored.read_text() == "s3cret p@ss/word"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in capsys.readouterr().out


def test_farm_db_password_leaves_a_local_server_s_alone(tmp_path, capsys):
    config = tmp_path / "farm.yaml"
    config.write_text(BASE + "db: {server: local}\n")
    assert main(["--config", str(config), "db-password", "--password-stdin"]) == 1
    assert "farm up made its password" in capsys.readouterr().err
    assert not (tmp_path / ".farm" / "secrets" / "db-password").exists()
