"""The farm as typed, immutable values: what farm.yaml means once validated."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from rustfarm.targets import cargo_target_variable

from .forge_settings import Forge, NotifySettings, ProjectNotify
from .crate_source import CrateSource
from .pool_kinds import Pool


@dataclass(frozen=True)
class FarmSettings:
    name: str
    title: str
    url: str
    worker_port: int
    worker_host: str          # where the master's worker (PB) port listens ("" = choose)
    master_address: str       # the address workers use to reach the master ("" = choose)
    state_dir: Path
    toolchain: str            # the Rust toolchain projects build with unless they pin one


@dataclass(frozen=True)
class WwwSettings:
    host: str
    port: int
    users: tuple[str, ...]


LOCAL_SERVER = "local"


@dataclass(frozen=True)
class DbSettings:
    """The master's database. ``url`` never needs its password: for PostgreSQL the
    master takes it from the secret store (``db-password``) when the URL has none."""

    url: str
    server: str = ""          # "local": `farm up` runs this PostgreSQL server itself
    # Said by `farm check` and `farm up`, not refused (a password written in db.url).
    warnings: tuple = field(default=(), compare=False)

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith(("postgresql:", "postgresql+", "postgres:"))

    @property
    def runs_locally(self) -> bool:
        return self.server == LOCAL_SERVER

    def _part(self, name: str):
        try:
            return getattr(urlsplit(self.url), name)
        except ValueError:      # a port that is not a number: refused by farm check
            return None

    @property
    def host(self) -> str:
        return self._part("hostname") or ""

    @property
    def port(self) -> int:
        return self._part("port") or 5432

    @property
    def user(self) -> str:
        return self._part("username") or ""

    @property
    def database(self) -> str:
        return (self._part("path") or "").lstrip("/")

    @property
    def has_port(self) -> bool:
        return self._part("port") is not None

    @property
    def has_password(self) -> bool:
        return self._part("password") is not None


@dataclass(frozen=True)
class MasterSettings:
    """One of the farm's masters: every master serves the web UI and takes workers."""

    name: str
    www_port: int
    worker_port: int
    host: str = ""            # the machine it runs on ("" = this one)


@dataclass(frozen=True)
class RouterSettings:
    """The WAMP router Buildbot's multi-master mode passes its messages through."""

    url: str                  # ws://host:port/path
    realm: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (443 if self.url.startswith("wss:") else 80)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


@dataclass(frozen=True)
class FailoverSettings:
    """How soon the masters of a multi-master farm give up on one of them."""

    # Seconds without a heartbeat after which the other masters declare a master dead:
    # they end its running builds as RETRY and build its requests again themselves.
    master_timeout: int = 45


@dataclass(frozen=True)
class ScheduleSettings:
    nightly: tuple[int, int] | None     # (hour, minute), or None for no nightly build


@dataclass(frozen=True)
class S3Artifacts:
    """An artifact store in an S3 bucket, under a key prefix ("" or ending in "/")."""
    bucket: str
    prefix: str
    region: str = ""
    endpoint_url: str = ""           # "" is AWS's own S3


@dataclass(frozen=True)
class ArtifactSettings:
    directory: Path
    keep: int
    s3: S3Artifacts | None = None    # the store is this bucket (directory is not used)


@dataclass(frozen=True)
class CompileSettings:
    """The compile endpoint: projects uploaded and built without a farm.yaml entry."""

    targets: tuple[str, ...]  # what an upload builds when it names none (container pools only)
    max_upload: int           # bytes of the request body
    max_files: int            # members of the unpacked upload
    max_unpacked: int         # bytes of the unpacked upload
    queue: int                # compile jobs waiting or running at once
    keep: int                 # seconds an upload and its results are kept
    tessel_port: int          # 0: off; else a port answering POST /rust-compile as Tessel's did
    tessel_target: str        # what /rust-compile builds
    tessel_anonymous: bool    # /rust-compile without a token


COMPILE_PROJECT = "compile"   # the builders of uploads are compile:<target>


@dataclass(frozen=True)
class Target:
    triple: str
    pool: str
    images: Mapping[str, str]  # toolchain -> the worker image pinned for it
    linker: str
    runner: str               # "" = no tests; "native": the worker runs them; "image": the
                              # worker image sets cargo's runner; else the runner command
    env: Mapping[str, str] = field(default_factory=dict)

    def image_for(self, toolchain: str) -> str:
        return self.images.get(toolchain, "")

    @property
    def arch(self) -> str:
        return self.triple.split("-", 1)[0]

    @property
    def can_run(self) -> bool:
        return bool(self.runner)

    @property
    def executable_suffix(self) -> str:
        if "windows" in self.triple:
            return ".exe"
        if self.triple.startswith("wasm32"):
            return ".wasm"
        return ""

    def cargo_env(self) -> dict[str, str]:
        """Environment cargo needs for this target beyond what the worker has."""
        env = {}
        if self.linker:
            env[cargo_target_variable(self.triple, "LINKER")] = self.linker
        if self.runner and self.runner not in ("native", "image"):
            env[cargo_target_variable(self.triple, "RUNNER")] = self.runner
        env.update(self.env)
        return env


@dataclass(frozen=True)
class Project:
    name: str
    source: str               # a git URL, or an absolute path (git checkout or plain directory)
    subdir: str
    branches: tuple[str, ...]
    poll_interval: int        # seconds; 0 = do not poll
    targets: tuple[str, ...]
    profile: str
    features: tuple[str, ...]
    test: bool
    binaries: tuple[str, ...]
    toolchain: str = ""       # the Rust toolchain it builds with
    toolchain_pinned: bool = False  # farm.yaml names it for this project (else the farm's default)
    strip: bool = True        # ship binaries without symbols
    auditable: bool = False   # the dependency list embedded in each binary (cargo auditable)
    fetch_timeout: int = 600  # seconds a clone or fetch of a git source may take
    packages: tuple[str, ...] = ("deb", "ipk")  # the release's packages, where a target has them
    service: str = ""         # the command procd runs on OpenWrt (the .ipk's init script)
    maintainer: str = ""      # the packages' Maintainer field
    forge: Forge | None = None
    # Out of its repr (which steps' log lines show): a chat webhook's URL often holds a token.
    notify: ProjectNotify = field(default=ProjectNotify(), repr=False)

    @property
    def watched(self) -> bool:
        """New commits build it: it is polled, or its forge sends webhooks."""
        return self.polls or self.forge is not None

    @property
    def is_git(self) -> bool:
        return "://" in self.source or self.source.endswith(".git") or \
            (Path(self.source) / ".git").exists() or self.source.startswith("git@")

    @property
    def polls(self) -> bool:
        return self.is_git and self.poll_interval > 0

    @property
    def profiles(self) -> tuple[str, ...]:
        """The cargo profiles its builds may use (the force forms offer them)."""
        return tuple(sorted({"release", "dev", self.profile}))


@dataclass(frozen=True)
class Farm:
    """Everything farm.yaml says, validated."""

    path: Path
    farm: FarmSettings
    www: WwwSettings
    db: DbSettings
    schedule: ScheduleSettings
    artifacts: ArtifactSettings
    compile: CompileSettings
    crates: CrateSource
    pools: Mapping[str, Pool]
    targets: Mapping[str, Target]
    projects: Mapping[str, Project]
    masters: tuple[MasterSettings, ...] = ()
    router: RouterSettings | None = None
    failover: FailoverSettings = FailoverSettings()
    notify: NotifySettings = NotifySettings()
    # The master this farm is seen from (as_master), with several; "" otherwise.
    serving: str = ""

    @property
    def multi_master(self) -> bool:
        return len(self.masters) > 1

    def master(self, name: str) -> MasterSettings:
        return next(m for m in self.masters if m.name == name)

    def as_master(self, name: str) -> Farm:
        """The farm as master ``name`` serves it: its own web UI and worker ports
        (and its own URL where farm.url is left at the web UI's address)."""
        master = self.master(name)
        farm, www = self.farm, self.www
        url = farm.url
        if url == f"http://{www.host}:{www.port}/":
            url = f"http://{master.host or www.host}:{master.www_port}/"
        return replace(self, farm=replace(farm, worker_port=master.worker_port, url=url),
                       www=replace(www, port=master.www_port),
                       serving=name if self.multi_master else "")

    def project_targets(self, project: Project) -> list[Target]:
        return [self.targets[t] for t in project.targets]

    def used_images(self, pool: str | None = None) -> dict[str, str]:
        """``<triple>@<toolchain>`` -> image, for the images the builders use
        (those of one pool when given)."""
        used = {}
        for project in self.projects.values():
            for target in self.project_targets(project):
                image = target.image_for(project.toolchain)
                if image and pool in (None, target.pool):
                    used[f"{target.triple}@{project.toolchain}"] = image
        return used

    def pinned_images(self) -> dict[str, str]:
        """``<triple>@<toolchain>`` -> the image farm.yaml pins for it."""
        return {f"{target.triple}@{toolchain}": image for target in self.targets.values()
                for toolchain, image in target.images.items()}

    def docker_engine(self) -> str | None:
        """The engine of the farm's first docker pool, where its images are built."""
        return next((p.engine for p in self.pools.values() if p.kind == "docker"), None)
