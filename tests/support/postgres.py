"""A private PostgreSQL server (Debian's postgresql) for a test or a benchmark.

The cluster lives in a directory of its own under /tmp, owned by the postgres
user when we are root, listens on 127.0.0.1 at a free port with a random
password, and is removed by :meth:`PrivateCluster.stop`. A cluster the system
already runs is never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .registry import free_port

SERVER_BINARIES = Path("/usr/lib/postgresql")


def server_bin() -> Path | None:
    """The newest installed server's bin directory (initdb, pg_ctl)."""
    found = sorted((p for p in SERVER_BINARIES.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def ensure_server() -> str | None:
    """Make sure Debian's postgresql is installed; returns why it cannot be, or None."""
    if server_bin():
        return None
    if os.geteuid() != 0:
        return "Debian's postgresql is not installed and we are not root to install it"
    installed = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"],
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                               capture_output=True, text=True)
    if installed.returncode != 0 or not server_bin():
        return f"installing postgresql failed: {installed.stderr.strip()[-300:]}"
    return None


class PrivateCluster:
    """initdb + pg_ctl in a temporary directory; ``url(database)`` for SQLAlchemy."""

    def __init__(self) -> None:
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="rustfarm-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.bin = server_bin()

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        # The server refuses to run as root: run it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)

    def start(self) -> "PrivateCluster":
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server is installed")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--auth-local=peer", "--auth-host=scram-sha-256",
                         f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions")
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=on -c max_connections=50")
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                         "-o", options, "-w", "-t", "60", "start")
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-300:]}\n{log}")
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.bin is not None and (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)
