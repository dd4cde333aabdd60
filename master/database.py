"""The master's database: farm.yaml's URL, how SQLite connections are kept, and
one repair PostgreSQL needs with psycopg 3.

SQLite: Buildbot opens a new connection for every query and closes it after (its
NullPool, chosen for SQLAlchemy 0.6). Closing the only connection to a WAL
database checkpoints it, so every query also paid a connect and a checkpoint:
with the few rows the master writes for each builder and scheduler when it
starts, that was more than half of the start of 1,100 builders (39 s, 16 s
without). Buildbot runs SQLite queries on one thread, so one pooled connection
serves them all; its ``engine_kwargs`` setting says so.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from buildbot.util import service
from twisted.internet import defer
from sqlalchemy.pool import QueuePool



@dataclasses.dataclass(frozen=True)
class SqliteConnector:
    """Connections to the master's SQLite database that sync to disk at checkpoints,
    not at every commit: in WAL mode the database stays consistent through a crash or
    a power loss (the last transactions may be lost, never the file). Each builder
    the master registers is a few commits; a sync each made half of a start.

    A value, so the ``db`` setting of two loads of the configuration compares equal
    (Buildbot refuses a reconfiguration that changes it)."""

    path: str

    def __call__(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False)
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection


def db_config(url: str) -> dict:
    """Buildbot's ``db`` setting for farm.yaml's ``db.url``."""
    config: dict = {"db_url": url}
    if url.startswith("sqlite:") and url.removeprefix("sqlite:") not in ("//", "///:memory:"):
        path = url.removeprefix("sqlite:///")
        config["engine_kwargs"] = {"poolclass": QueuePool, "pool_size": 1,
                                   "creator": SqliteConnector(path)}
    return config


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:"))


INTEGER_TEXT_EQUALITY = [
    """CREATE OR REPLACE FUNCTION rustfarm_integer_eq_varchar(integer, character varying)
       RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 = $2::integer'""",
    """DO $$ BEGIN
         CREATE OPERATOR = (LEFTARG = integer, RIGHTARG = character varying,
                            FUNCTION = rustfarm_integer_eq_varchar);
       EXCEPTION WHEN duplicate_function THEN NULL;
       END $$""",
]


class IntegerTextEquality(service.BuildbotService):
    """Lets PostgreSQL compare an integer column with a text parameter, as with psycopg2.

    Buildbot 4.3's ``/api/v2/builders/<id>/forceschedulers`` (which every builder
    page loads) passes the id from its URL as text: its path pattern lacks the
    ``n:`` of the others. psycopg 3 binds it as VARCHAR, PostgreSQL refuses
    ``integer = character varying``, and the page showed no force button. This
    operator reads the text as an integer, which is what psycopg2 let the server do.
    """

    name = "postgresql-integer-text-equality"

    @defer.inlineCallbacks
    def startService(self):
        def create(connection):
            for statement in INTEGER_TEXT_EQUALITY:
                connection.exec_driver_sql(statement)
            connection.commit()

        yield self.master.db.pool.do(create)
        yield super().startService()


def database_services(url: str) -> list:
    return [IntegerTextEquality()] if is_postgresql(url) else []
