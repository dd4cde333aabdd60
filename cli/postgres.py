"""PostgreSQL from Debian's package, run by the farm: the server of ``db.server: local``
for a trial on one machine, with its data, log and socket in ``state_dir/postgres``.

The server refuses to run as root, so when `farm up` runs as root the server runs as
Debian's ``postgres`` user, which owns that directory. It listens on farm.yaml's
loopback address only; its superuser logs in through the Unix socket as the operating
system user it runs as (peer), and the farm's role with the password of the secret
store (``db-password``), which reaches the server as a SCRAM verifier: never in a
command line, a log or farm.yaml.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

from psycopg import pq

from rustfarm.errors import FarmError
from rustfarm.farmfile.model import DbSettings
from rustfarm.progress import say
from rustfarm.state import DB_PASSWORD_SECRET, SecretStore, StateDir

from .processes import port_in_use, process_alive

SERVER_BINARIES = Path("/usr/lib/postgresql")
# Debian's server user: who runs the server when the farm runs as root.
SERVER_USER_WHEN_ROOT = "postgres"


def server_bin(version: str | None = None) -> Path | None:
    """The bin directory (initdb, pg_ctl, psql) of the installed server of ``version``,
    or of the newest one."""
    found = sorted((p for p in SERVER_BINARIES.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if version is not None:
        found = [p for p in found if p.parent.name == version]
    return found[-1] if found else None


def ensure_installed() -> str | None:
    """Make sure Debian's postgresql is installed; returns why it cannot be, or None."""
    if server_bin():
        return None
    if os.geteuid() != 0:
        return "Debian's postgresql is not installed and only root can install it " \
               "(apt-get install postgresql)"
    installed = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"],
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                               capture_output=True, text=True)
    if installed.returncode != 0 or not server_bin():
        return f"installing Debian's postgresql failed: {installed.stderr.strip()[-300:]}"
    return None


def server_user() -> str:
    return SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def run_as_server_user(*command: str, input: str | None = None,
                       timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", SERVER_USER_WHEN_ROOT, "--"] if os.geteuid() == 0 else []
    # From "/": the server user may not enter the caller's directory.
    return subprocess.run([*prefix, *command], capture_output=True, text=True, input=input,
                          timeout=timeout, cwd="/")


def hand_to_server_user(path: Path) -> None:
    """Make ``path`` the server user's alone (PostgreSQL insists on 0700)."""
    if os.geteuid() == 0:
        shutil.chown(path, SERVER_USER_WHEN_ROOT, SERVER_USER_WHEN_ROOT)
    path.chmod(0o700)


def unreachable_directory(path: Path, user: str) -> Path | None:
    """The first directory above ``path`` that ``user`` may not enter, if any."""
    account = pwd.getpwnam(user)
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for directory in reversed(path.parents):
        mode = directory.stat()
        if mode.st_uid == account.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def scram_sha_256(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password``, as libpq makes it
    (PQencryptPasswordConn): given to ALTER ROLE, the server never sees the password."""
    # Told the algorithm, libpq asks no server, so a connection that never opens serves
    # (no socket can exist under /dev/null).
    unopened = pq.PGconn.connect_start(b"host=/dev/null")
    try:
        return unopened.encrypt_password(password.encode(), b"", b"scram-sha-256").decode()
    finally:
        unopened.finish()


class Cluster:
    """One PostgreSQL cluster in ``directory`` (data/, server.log, its Unix socket),
    listening on ``host``:``port``, started and stopped with pg_ctl as the server user."""

    def __init__(self, directory: Path, host: str, port: int):
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.host, self.port = host, port

    @property
    def version(self) -> str | None:
        """The PostgreSQL major version the data was made by (None before initdb)."""
        try:
            return (self.data / "PG_VERSION").read_text().strip()
        except OSError:
            return None

    @property
    def bin(self) -> Path:
        found = server_bin(self.version)
        if found is None:
            raise FarmError(f"{self.data} holds PostgreSQL {self.version}'s data, and that "
                            "server is not installed" if self.version else
                            "Debian's postgresql is not installed")
        return found

    @property
    def socket_dir(self) -> Path:
        """The directory of the server's Unix socket: its own one, or a short one
        under /tmp where that path is too long for a socket (about 100 bytes)."""
        if len(str(self.directory / f".s.PGSQL.{self.port}")) <= 100:
            return self.directory
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:12]
        return Path(f"/tmp/rustfarm-pg-{digest}")

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def initdb(self, superuser: str, password: str | None = None) -> None:
        """A new cluster: ``superuser`` logs in through the socket as the operating system
        user of the same name, or over TCP with ``password`` when one is given."""
        self.directory.mkdir(parents=True, exist_ok=True)
        hand_to_server_user(self.directory)
        options = []
        pwfile = self.directory / "initdb-password"
        if password is not None:
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            hand_to_server_user(pwfile)
            options.append(f"--pwfile={pwfile}")
        try:
            done = run_as_server_user(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", superuser,
                "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--no-instructions", *options)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise FarmError(f"initdb in {self.data} failed: {done.stderr.strip()[-500:]}")

    def start(self, timeout: float = 60) -> None:
        socket_dir = self.socket_dir
        if socket_dir != self.directory:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            hand_to_server_user(socket_dir)
        options = " ".join(f"-c {name}={shlex.quote(str(value))}" for name, value in (
            ("listen_addresses", self.host), ("port", self.port),
            ("unix_socket_directories", socket_dir)))
        done = run_as_server_user(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                                  str(self.log), "-o", options, "-w", "-t", str(int(timeout)),
                                  "start", timeout=timeout + 30)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            raise FarmError(f"PostgreSQL did not start in {self.data}: "
                            f"{done.stderr.strip()[-300:]}\n{log}".rstrip())

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server (fast: open sessions end); True when it was running."""
        pid = self.pid
        if pid is None:
            return False
        run_as_server_user(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                           "-w", "-t", str(int(timeout)), "stop", timeout=timeout + 30)
        if process_alive(pid):
            raise FarmError(f"PostgreSQL (pid {pid}) did not stop within {timeout:.0f} s; "
                            f"see {self.log}")
        return True

    def psql(self, sql: str, superuser: str, database: str = "postgres") -> None:
        """Run ``sql`` (from standard input: nothing in a command line) as ``superuser``."""
        done = run_as_server_user(str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                  "-h", str(self.socket_dir), "-p", str(self.port),
                                  "-U", superuser, "-d", database, input=sql)
        if done.returncode != 0:
            raise FarmError(f"PostgreSQL refused the farm's role or database: "
                            f"{done.stderr.strip()[-500:]}")


class LocalServer:
    """The PostgreSQL server farm.yaml's ``db: {server: local}`` asks `farm up` to run."""

    def __init__(self, state: StateDir, db: DbSettings):
        self.db = db
        self.secrets = SecretStore(state.secrets)
        self.cluster = Cluster(state.postgres, db.host, db.port)

    @property
    def pid(self) -> int | None:
        return self.cluster.pid

    def start(self) -> None:
        """Install, initialise (once), start and prepare the server: its role with the
        secret store's password (made now if there is none) and its database."""
        cluster, db = self.cluster, self.db
        if self.secrets.ensure(DB_PASSWORD_SECRET):
            say(f"created the database password in {self.secrets.path(DB_PASSWORD_SECRET)}")
        if cluster.pid is None:
            reason = ensure_installed()
            if reason:
                raise FarmError(f"db.server is local, but {reason}")
            user = server_user()
            cluster.directory.mkdir(parents=True, exist_ok=True)
            blocked = unreachable_directory(cluster.directory, user)
            if blocked:
                raise FarmError(f"PostgreSQL runs as user '{user}' (it refuses root), who "
                                f"cannot enter {blocked}: let it (chmod o+x {blocked}) or "
                                "put farm.state_dir where it can")
            if cluster.version is None:
                say(f"initialising a PostgreSQL cluster in {cluster.data}")
                cluster.initdb(superuser=user)
            if port_in_use(db.host if db.host != "localhost" else "127.0.0.1", db.port):
                raise FarmError(f"cannot start PostgreSQL: port {db.port} on {db.host} (db in "
                                "farm.yaml) is already in use by another program")
            say(f"starting PostgreSQL {cluster.version} in {cluster.directory} on "
                f"{db.host}:{db.port}")
            cluster.start()
        # Every start: the role's password follows the secret store.
        verifier = scram_sha_256(self.secrets.read(DB_PASSWORD_SECRET))
        role, database = db.user, db.database
        cluster.psql(f"""\
SELECT 'CREATE ROLE "{role}" LOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec
ALTER ROLE "{role}" LOGIN PASSWORD '{verifier}';
SELECT 'CREATE DATABASE "{database}" OWNER "{role}"'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec
""", superuser=server_user())

    def stop(self) -> bool:
        return self.cluster.stop()

    def status_line(self) -> str:
        pid = self.pid
        where = f"{self.db.host}:{self.db.port}, data in {self.cluster.directory}"
        if pid:
            return f"database: PostgreSQL {self.cluster.version} running (pid {pid}) on {where}"
        return f"database: PostgreSQL not running ({where}; farm up starts it)"


def stop_local_server(state: StateDir) -> bool:
    """Stop the server in the state directory, whatever farm.yaml says now."""
    cluster = Cluster(state.postgres, "127.0.0.1", 0)
    return cluster.pid is not None and cluster.stop()
