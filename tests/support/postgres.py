"""A private PostgreSQL server (Debian's postgresql) for a test or a benchmark, run the
way `farm up` runs a farm's own (rustfarm/cli/postgres.py).

The cluster lives in a directory of its own under /tmp, owned by the postgres
user when we are root, listens on 127.0.0.1 at a free port with a random
password for its superuser, and is removed by :meth:`PrivateCluster.stop`. A
cluster the system already runs is never touched.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from rustfarm.cli.postgres import Cluster, ensure_installed
from rustfarm.errors import FarmError

from .registry import free_port


def ensure_server() -> str | None:
    """Make sure Debian's postgresql is installed; returns why it cannot be, or None."""
    return ensure_installed()


class PrivateCluster:
    """initdb + pg_ctl in a temporary directory; ``url(database)`` for SQLAlchemy."""

    def __init__(self) -> None:
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="rustfarm-pg-"))
        self.cluster = Cluster(self.root, "127.0.0.1", self.port)
        self.data, self.log = self.cluster.data, self.cluster.log

    def start(self) -> "PrivateCluster":
        try:
            self.cluster.initdb(superuser="postgres", password=self.password)
            self.cluster.start()
        except FarmError as err:
            raise RuntimeError(str(err)) from err
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self.cluster.stop(timeout=10)
        except FarmError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
