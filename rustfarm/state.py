"""Where a farm keeps its state: database, logs, pid files, secrets, artifacts, sources.

Everything lives in one directory beside farm.yaml (``farm.state_dir``), so two
farms with different ports can run side by side.
"""

from __future__ import annotations

import hashlib
import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from .farmfile import Farm


# In an upload's directory (uploads/<job>/): its project, its builds' archives, and the
# job's record, which any master of the farm reads to answer for the job.
UPLOAD_SOURCE = "source.tar.gz"
UPLOAD_RESULTS = "results"
UPLOAD_RECORD = "job.json"


@dataclass(frozen=True)
class StateDir:
    root: Path
    # farm.yaml's artifacts.directory: in the state directory unless set elsewhere.
    artifacts_dir: Path | None = None
    # With several masters on one machine, the one whose worker socket this is.
    master_name: str = ""

    @classmethod
    def of(cls, farm: Farm) -> "StateDir":
        return cls(farm.farm.state_dir, farm.artifacts.directory, farm.serving)

    @property
    def artifacts(self) -> Path:
        return self.artifacts_dir or self.root / "artifacts"

    def upload_source(self, job: str) -> Path:
        """An upload's project, as the compile endpoint repacked it for its builds."""
        return self.uploads / job / UPLOAD_SOURCE

    def upload_results(self, job: str, target: str) -> Path:
        """Where an upload's build for ``target`` leaves its archive."""
        return self.uploads / job / UPLOAD_RESULTS / target

    @property
    def crate_store(self) -> Path:
        """The crates builds fetched from registries and git (rustfarm/crate_store.py)."""
        return self.root / "crates"

    @property
    def cargo_home(self) -> Path:
        """The cargo home of the farm's own cargo, which resolves and fetches them."""
        return self.root / "cargo-home"

    @property
    def uploads(self) -> Path:
        """Compile jobs: each upload and its results, for a while."""
        return self.root / "uploads"

    @property
    def master(self) -> Path:
        return self.root / "master"

    @property
    def master_log(self) -> Path:
        return self.master / "twistd.log"

    @property
    def master_pidfile(self) -> Path:
        return self.master / "twistd.pid"

    @property
    def runtime_file(self) -> Path:
        """What `farm up` found on this machine (Docker or not), for the master and CLI."""
        return self.master / "runtime.env"

    @property
    def workers(self) -> Path:
        return self.root / "workers"

    def worker(self, name: str) -> Path:
        return self.workers / name

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def staging(self) -> Path:
        """Where builds leave their files for the publish step, with an S3 store."""
        return self.root / "staging"

    @property
    def release_keys(self) -> Path:
        """The public keys of every release signing key the farm has had."""
        return self.root / "release-keys"

    @property
    def worker_socket(self) -> Path:
        """The master's worker port as a Unix socket, for containers without network.

        Its directory is mounted into every container, so it holds nothing else.
        Each of several masters has its own (``run/<master>/``): a container
        reaches the master that started it. A socket's path is limited to about
        100 bytes: a deep state directory gets a short one under /tmp instead,
        named by the hash of the state directory and the master.
        """
        run = self.root / "run"
        path = (run / self.master_name if self.master_name else run) / "worker.sock"
        if len(str(path)) > 100:
            key = str(self.root) + (f"\0{self.master_name}" if self.master_name else "")
            digest = hashlib.sha256(key.encode()).hexdigest()[:12]
            path = Path(f"/tmp/rustfarm-{digest}") / "worker.sock"
        return path

    def container_secret_dir(self, worker: str) -> Path:
        """Where the master leaves a container's worker password for its entrypoint,
        which deletes it once read; mounted into that worker's container only (and,
        with several masters, only by the master that starts it)."""
        secrets = self.root / "container-secrets"
        return (secrets / self.master_name if self.master_name else secrets) / worker

    @property
    def postgres(self) -> Path:
        """The PostgreSQL server `farm up` runs for ``db.server: local``: its data,
        log and socket."""
        return self.root / "postgres"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    def create(self) -> None:
        for path in (self.root, self.master, self.workers, self.sources, self.snapshots):
            path.mkdir(parents=True, exist_ok=True)
        # Mounted read-only into build containers, whose build user reads it.
        self.crate_store.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.crate_store, 0o755)
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# farm state: never commit\n*\n")


# The master's database password (a PostgreSQL URL without one takes it from here).
DB_PASSWORD_SECRET = "db-password"


def worker_secret_name(worker: str) -> str:
    return f"worker-{worker}"


def ui_secret_name(user: str) -> str:
    return f"ui-{user}"


def token_secret_name(user: str) -> str:
    """A user's API token for the compile endpoint (`farm token USER`)."""
    return f"token-{user}"


class SecretStore:
    """The files read by the master's ``SecretInAFile`` provider: one secret a file."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text().strip()
        except FileNotFoundError:
            return None

    def write(self, name: str, value: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path(name)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.replace(temporary, target)

    def ensure(self, name: str) -> bool:
        """Create a random secret unless one exists; True when it was created."""
        if self.read(name):
            return False
        self.write(name, _random.token_urlsafe(24))
        return True
