"""The master's database: farm.yaml's URL with its password from the secret store,
how SQLite connections are kept, how a server's are checked (a restarted server's
are made again), and one repair PostgreSQL needs with psycopg 3.

SQLite: Buildbot opens a new connection for every query and closes it after (its
NullPool, chosen for SQLAlchemy 0.6). Closing the only connection to a WAL
database checkpoints it, so every query also pays a connect and a checkpoint, a
large part of a large farm's start (docs/benchmarks.md). Buildbot runs SQLite
queries on one thread, so one pooled connection serves them all; its
``engine_kwargs`` setting says so.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from urllib.parse import quote

from buildbot.interfaces import IRenderable
from buildbot.plugins import util
from buildbot.util import ComparableMixin, service
from twisted.internet import defer
from sqlalchemy.pool import QueuePool
from zope.interface import implementer

from rustfarm.farmfile.model import DbSettings
from rustfarm.state import DB_PASSWORD_SECRET


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


@implementer(IRenderable)
class UrlWithSecretPassword(ComparableMixin):
    """A database URL that gets its password from the master's secrets provider when
    Buildbot renders it (DBConfig renders ``db_url`` before it connects): the password
    is in no configuration, and Buildbot logs the URL without it."""

    compare_attrs = ("url", "secret")

    def __init__(self, url: str, secret: str = DB_PASSWORD_SECRET):
        self.url, self.secret = url, secret

    @defer.inlineCallbacks
    def getRenderingFor(self, props):
        password = yield props.render(util.Secret(self.secret))
        scheme, rest = self.url.split("://", 1)
        user, at_host = rest.split("@", 1)
        return f"{scheme}://{user}:{quote(password, safe='')}@{at_host}"

    def __repr__(self) -> str:
        return f"UrlWithSecretPassword({self.url!r}, {self.secret!r})"


def database_url(db: DbSettings, secrets: Path) -> str | UrlWithSecretPassword:
    """Buildbot's ``db_url`` for farm.yaml's ``db``: a PostgreSQL URL with a user and
    no password takes the secret store's ``db-password`` (always for a local server;
    for another, when one is stored: a server may also let the user in without one)."""
    if not db.is_postgresql or db.has_password or not db.user:
        return db.url
    if db.runs_locally or (secrets / DB_PASSWORD_SECRET).exists():
        return UrlWithSecretPassword(db.url)
    return db.url


def db_config(url) -> dict:
    """Buildbot's ``db`` setting for the URL database_url makes."""
    config: dict = {"db_url": url}
    if isinstance(url, str) and url.startswith("sqlite:") \
            and url.removeprefix("sqlite:") not in ("//", "///:memory:"):
        path = url.removeprefix("sqlite:///")
        config["engine_kwargs"] = {"poolclass": QueuePool, "pool_size": 1,
                                   "creator": SqliteConnector(path)}
    elif not (isinstance(url, str) and url.startswith("sqlite:")):
        # A server restarted (a failover, an upgrade) leaves the pooled connections
        # dead: each is checked as it is taken (a round trip) and made again if it is,
        # where Buildbot would fail the query (a REST answer 500, a step's exception).
        config["engine_kwargs"] = {"pool_pre_ping": True}
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
