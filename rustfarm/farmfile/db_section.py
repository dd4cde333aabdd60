"""The ``db`` section: SQLite in the state directory by default, a PostgreSQL server
of one's own (``url``), or one `farm up` runs itself for a trial (``server: local``).

The database password is never farm.yaml's: `farm up` makes a local server's, and
an external server's is stored with `farm db-password`; both live in the state
directory's secret store, where the master reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import Problem
from ..plumbing import is_loopback
from .model import LOCAL_SERVER, DbSettings
from .reader import Section

DB_KEYS = ("url", "server", "port")
DEFAULT_LOCAL_PORT = 5433          # beside a system cluster on PostgreSQL's 5432
LOCAL_ROLE = LOCAL_DATABASE = "rustfarm"
# Role and database names the farm writes into SQL itself: plain identifiers only.
IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _url_check(value: str) -> str:
    if value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg2://",
                         "postgres://")):
        return ""
    return "must be a sqlite:/// or postgresql:// URL"


def _server_check(value: str) -> str:
    return "" if value == LOCAL_SERVER else \
        "must be 'local' (farm up runs PostgreSQL itself), or left out for a server of your own"


def local_url(port: int) -> str:
    return f"postgresql://{LOCAL_ROLE}@127.0.0.1:{port}/{LOCAL_DATABASE}"


def read_db(s: Section, state_dir: Path, taken: dict[int, str]) -> DbSettings:
    """``taken``: the farm's other ports on this machine, which a local server may not use."""
    db = _read_db(s, state_dir)
    if db.runs_locally and db.port in taken:
        key = "db.port" if s.has("port") else "db.url" if s.has("url") else "db.server"
        s.error(s.key_line(key), key, f"the local database server's port {db.port} is "
                                      f"already {taken[db.port]}")
    return db


def _read_db(s: Section, state_dir: Path) -> DbSettings:
    sqlite = f"sqlite:///{state_dir / 'master' / 'state.sqlite'}"
    server = s.text("server", "", check=_server_check)
    port_line, url_line = s.key_line("port"), s.key_line("url")
    if server != LOCAL_SERVER:
        if s.has("port"):
            s.error(port_line, "db.port", "only with server: local (the port of a server of "
                                          "your own is db.url's)")
        db = DbSettings(url=s.text("url", sqlite, check=_url_check))
        if db.is_postgresql and db.has_password:
            return DbSettings(url=db.url, warnings=(Problem(
                s.filename, url_line, "db.url",
                "carries the database password, and farm.yaml may end up in a repository: "
                "store it with `farm db-password` and remove it from the URL"),))
        return db
    if not s.has("url"):
        port = s.integer("port", DEFAULT_LOCAL_PORT, minimum=1, maximum=65535)
        return DbSettings(url=local_url(port), server=LOCAL_SERVER)
    db = DbSettings(url=s.text("url", check=_url_check) or "", server=LOCAL_SERVER)
    if s.has("port"):
        s.error(port_line, "db.port", "the port is db.url's: give it there, not twice")
    if _url_check(db.url):
        return db
    if not db.is_postgresql:
        s.error(s.key_line("server"), "db.server",
                "a local server is PostgreSQL: make db.url a postgresql://USER@127.0.0.1:PORT"
                "/DATABASE URL, or leave it out (the default is "
                f"{local_url(DEFAULT_LOCAL_PORT)})")
        return db
    if not is_loopback(db.host):
        s.error(url_line, "db.url", "farm up runs the local server on loopback only: the host "
                                    f"must be 127.0.0.1, not {db.host or 'a Unix socket'}")
    elif not db.has_port:
        s.error(url_line, "db.url", "a local server needs its port in the URL, such as "
                                    f"{local_url(DEFAULT_LOCAL_PORT)}")
    if db.has_password:
        s.error(url_line, "db.url", "farm up makes the local server's password and keeps it in "
                                    "the secret store (secrets/db-password): remove it from "
                                    "the URL")
    for what, name in (("role", db.user), ("database", db.database)):
        if not IDENTIFIER_RE.match(name):
            s.error(url_line, "db.url", f"the local server's {what} name must be lower-case "
                                        f"letters, digits and '_', not '{name}'")
    return db
