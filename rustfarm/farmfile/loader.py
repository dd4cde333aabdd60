"""farm.yaml -> :class:`Farm`, or every problem with its file, line and key."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import FarmFileError, Problem, did_you_mean
from .model import (ArtifactSettings, CrateSource, DbSettings, DockerPool, Ec2Pool, Farm,
                    FarmSettings, LocalPool, Pool, Project, ScheduleSettings, Target,
                    WwwSettings)
from .reader import NAME_RE, Section
from .yamlsource import load_yaml

TOP_KEYS = ("farm", "www", "db", "schedule", "artifacts", "crates", "workers", "targets",
            "projects")
POOL_KINDS = ("local", "docker", "ec2")
PROFILES_BUILTIN = ("release", "dev")
DEFAULT_STATE_DIR = ".farm"


# The targets rustfarm ships worker images for (images/README.md).
FARM_TARGETS = (
    "mipsel-unknown-linux-gnu", "mips64el-unknown-linux-gnuabi64",
    "armv7-unknown-linux-gnueabihf", "armv5te-unknown-linux-gnueabi", "aarch64-unknown-linux-gnu",
    "i686-unknown-linux-gnu", "powerpc64le-unknown-linux-gnu", "s390x-unknown-linux-gnu",
    "x86_64-unknown-linux-gnu", "x86_64-pc-windows-gnu", "wasm32-unknown-unknown",
)


def known_triples() -> frozenset[str]:
    text = resources.files("rustfarm.farmfile").joinpath("target_triples.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def load(path: str | Path) -> Farm:
    """Load and validate a farm file; raises :class:`FarmFileError`."""
    path = Path(path).resolve()
    try:
        text = path.read_text()
    except OSError as err:
        raise FarmFileError([Problem(str(path), 0, "", f"cannot read: {err.strerror}")]) from None
    return loads(text, path)


def loads(text: str, path: Path) -> Farm:
    problems: list[Problem] = []
    shown = _display_name(path)
    data = load_yaml(text, shown, problems)
    if data is None:
        raise FarmFileError(problems)
    farm = _Builder(problems, shown, path).build(data)
    if problems:
        raise FarmFileError(problems)
    return farm


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _url_check(value: str) -> str:
    return "" if re.match(r"^https?://[^/\s]+(/.*)?$", value) else "must be an http:// or https:// URL"


def _db_check(value: str) -> str:
    if value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg2://",
                         "postgres://")):
        return ""
    return "must be a sqlite:/// or postgresql:// URL"


def _time_check(value: str) -> str:
    return "" if re.match(r"^([01]?\d|2[0-3]):[0-5]\d$", value) else "must be a time HH:MM (24-hour)"


def _name_check(value: str) -> str:
    return "" if NAME_RE.match(value) else "use lower-case letters, digits, '-', '_' and '.'"


class _Builder:
    def __init__(self, problems: list[Problem], filename: str, path: Path):
        self.problems = problems
        self.filename = filename
        self.path = path
        self.base = path.parent

    def section(self, node: Any, path: str, allowed: tuple[str, ...], line: int = 0) -> Section:
        return Section(self.problems, self.filename, node, path, allowed, line)

    def build(self, data: Any) -> Farm:
        top = self.section(data, "", TOP_KEYS, 1)
        www = self.www(top)
        farm = self.farm_settings(top, www)
        pools = self.pools(top)
        for pool in pools.values():
            if pool.kind == "docker" and pool.remote and not farm.master_address:
                top.error(top.key_line("workers"), f"workers.{pool.name}.docker_host",
                          "a remote Docker engine needs farm.master_address: the address "
                          "its containers reach the master at")
            if pool.kind == "ec2" and not farm.master_address:
                top.error(top.key_line("workers"), f"workers.{pool.name}",
                          "an ec2 pool needs farm.master_address: the address its instances "
                          "reach the master at")
        targets = self.targets(top, pools)
        projects = self.projects(top, targets)
        return Farm(
            path=self.path,
            farm=farm,
            www=www,
            db=self.db(top, farm),
            schedule=self.schedule(top),
            artifacts=self.artifacts(top, farm),
            crates=self.crates(top),
            pools=pools,
            targets=targets,
            projects=projects,
        )

    def farm_settings(self, top: Section, www: WwwSettings) -> FarmSettings:
        s = self.section(top.raw("farm"), "farm",
                         ("name", "title", "url", "state_dir", "worker_port", "worker_host",
                          "master_address"), top.key_line("farm"))
        if not top.has("farm"):
            s.error(1, "farm", "missing required key")
        name = s.text("name", check=_name_check) or "farm"
        url = s.text("url", f"http://{www.host}:{www.port}/", check=_url_check)
        return FarmSettings(
            name=name,
            title=s.text("title", name),
            url=url if url.endswith("/") else url + "/",
            worker_port=s.integer("worker_port", 9989, minimum=0),
            worker_host=s.text("worker_host", ""),
            master_address=s.text("master_address", ""),
            state_dir=(self.base / s.text("state_dir", DEFAULT_STATE_DIR)).resolve(),
        )

    def www(self, top: Section) -> WwwSettings:
        s = self.section(top.raw("www"), "www", ("host", "port", "users"), top.key_line("www"))
        users = s.texts("users", ())
        for index, user in enumerate(users):
            if not re.match(r"^[A-Za-z0-9_.@-]+$", user):
                s.error(s.item_line("users", index), f"www.users[{index}]",
                        "user names use letters, digits, '.', '_', '@' and '-'")
        return WwwSettings(host=s.text("host", "127.0.0.1"),
                           port=s.integer("port", 8010, minimum=0),
                           users=users)

    def db(self, top: Section, farm: FarmSettings) -> DbSettings:
        s = self.section(top.raw("db"), "db", ("url",), top.key_line("db"))
        default = f"sqlite:///{farm.state_dir / 'master' / 'state.sqlite'}"
        return DbSettings(url=s.text("url", default, check=_db_check))

    def schedule(self, top: Section) -> ScheduleSettings:
        s = self.section(top.raw("schedule"), "schedule", ("nightly",), top.key_line("schedule"))
        if s.has("nightly") and s.raw("nightly") in (None, False):
            return ScheduleSettings(nightly=None)
        value = s.text("nightly", "03:00", check=_time_check)
        if not value or _time_check(value):
            return ScheduleSettings(nightly=None)
        hour, minute = value.split(":")
        return ScheduleSettings(nightly=(int(hour), int(minute)))

    def artifacts(self, top: Section, farm: FarmSettings) -> ArtifactSettings:
        s = self.section(top.raw("artifacts"), "artifacts", ("directory", "keep"),
                         top.key_line("artifacts"))
        directory = s.text("directory", "artifacts")
        return ArtifactSettings(directory=(farm.state_dir / directory).resolve(),
                                keep=s.integer("keep", 5, minimum=1))

    def crates(self, top: Section) -> CrateSource:
        s = self.section(top.raw("crates"), "crates", ("directory", "registry"),
                         top.key_line("crates"))
        if s.has("directory") and s.has("registry"):
            s.error(s.line, "crates", "give either directory or registry, not both")
        if s.has("directory"):
            return CrateSource("directory", s.text("directory"))
        if s.has("registry"):
            return CrateSource("registry", s.text("registry"))
        return CrateSource("crates-io")

    def pools(self, top: Section) -> dict[str, Pool]:
        pools: dict[str, Pool] = {}
        self.declared_pools = set()
        for name, node, line in top.children("workers"):
            self.declared_pools.add(name)
            kind = node.get("kind") if isinstance(node, dict) else None
            if kind in POOL_KINDS:
                s = self.section(node, f"workers.{name}", _POOL_KEYS[kind], line)
                pools[name] = getattr(self, f"pool_{kind}")(name, s)
                continue
            s = self.section(node, f"workers.{name}", _POOL_KEYS_ALL, line)
            if s.text("kind") is not None:
                s.error(s.key_line("kind"), f"workers.{name}.kind",
                        f"unknown pool kind '{kind}'{did_you_mean(str(kind), POOL_KINDS)}; "
                        f"kinds: {', '.join(POOL_KINDS)}")
        return pools

    def pool_local(self, name: str, s: Section) -> LocalPool:
        return LocalPool(name=name, count=s.integer("count", 1, minimum=1))

    def pool_docker(self, name: str, s: Section) -> DockerPool:
        memory = s.text("memory", None)
        if memory and not re.match(r"^\d+(\.\d+)?[bkmgBKMG]?$", memory):
            s.error(s.key_line("memory"), f"workers.{name}.memory",
                    f"must be a size such as 4g or 512m, not '{memory}'")
        docker_host = s.text("docker_host", "")
        if docker_host and not docker_host.startswith(("unix://", "tcp://", "ssh://")):
            s.error(s.key_line("docker_host"), f"workers.{name}.docker_host",
                    "must be a unix://, tcp:// or ssh:// URL")
        return DockerPool(name=name, count=s.integer("count", 2, minimum=1),
                          docker_host=docker_host,
                          cpus=s.number("cpus", None), memory=memory)

    def pool_ec2(self, name: str, s: Section) -> Ec2Pool:
        ami = s.text("ami", "")
        ami_name = s.text("ami_name", "")
        if not ami and not ami_name:
            s.error(s.line, f"workers.{name}", "give ami (an id) or ami_name (with ami_owner)")
        fallback = s.text("spot_fallback", "on-demand")
        if fallback not in ("on-demand", "fail"):
            s.error(s.key_line("spot_fallback"), f"workers.{name}.spot_fallback",
                    "must be on-demand or fail")
        return Ec2Pool(
            name=name,
            max_instances=s.integer("max_instances", 1, minimum=1),
            region=s.text("region"),
            ami=ami, ami_name=ami_name, ami_owner=s.text("ami_owner", ""),
            instance_type=s.text("instance_type"),
            spot=s.flag("spot", False),
            max_spot_price=s.number("max_spot_price", None),
            spot_fallback=fallback,
            subnet_id=s.text("subnet_id", ""),
            security_group_ids=s.texts("security_group_ids", ()),
            instance_profile=s.text("instance_profile", ""),
            keypair_name=s.text("keypair_name", ""),
            volume_size_gb=s.integer("volume_size_gb", 30, minimum=8),
            tags=s.text_mapping("tags"),
            idle_timeout=s.integer("idle_timeout", 0, minimum=0),
            connect_timeout=s.integer("connect_timeout", 600, minimum=10),
            image_registry=s.text("image_registry"),
        )

    def targets(self, top: Section, pools: dict[str, Pool]) -> dict[str, Target]:
        triples = known_triples()
        targets: dict[str, Target] = {}
        for triple, node, line in top.children("targets"):
            s = self.section(node, f"targets.{triple}",
                             ("pool", "image", "linker", "runner", "env"), line)
            if triple not in triples:
                s.error(line, f"targets.{triple}",
                        f"unknown target triple{did_you_mean(triple, triples)}; rustfarm has "
                        f"images for {', '.join(FARM_TARGETS)} "
                        "(`farm targets --known` lists every triple rustc knows)")
            pool = s.text("pool")
            if pool is not None and pool not in self.declared_pools:
                defined = ", ".join(sorted(self.declared_pools)) or "none"
                s.error(s.key_line("pool"), f"targets.{triple}.pool",
                        f"no worker pool '{pool}' is defined under workers"
                        f"{did_you_mean(pool, pools)} (defined: {defined})")
            image = s.text("image", "")
            if pool in pools and pools[pool].kind in ("docker", "ec2") and not image:
                s.error(line, f"targets.{triple}.image",
                        f"pool '{pool}' runs containers, so the target needs an image")
            targets[triple] = Target(triple=triple, pool=pool or "", image=image,
                                     linker=s.text("linker", ""), runner=s.text("runner", ""),
                                     env=s.text_mapping("env"))
        if not top.has("targets"):
            top.error(1, "targets", "missing required key")
        return targets

    def projects(self, top: Section, targets: dict[str, Target]) -> dict[str, Project]:
        projects: dict[str, Project] = {}
        for name, node, line in top.children("projects"):
            path = f"projects.{name}"
            s = self.section(node, path, ("source", "subdir", "branches", "poll_interval",
                                          "targets", "profile", "features", "test",
                                          "binaries"), line)
            source = s.text("source")
            if source is not None:
                source = self.resolve_source(s, source)
            wanted = s.texts("targets", tuple(targets))
            for index, triple in enumerate(wanted):
                if triple not in targets:
                    s.error(s.item_line("targets", index), f"{path}.targets[{index}]",
                            f"target '{triple}' is not defined under targets"
                            f"{did_you_mean(triple, targets)}")
            profile = s.text("profile", "release", check=_name_check)
            projects[name] = Project(
                name=name,
                source=source or "",
                subdir=s.text("subdir", "").strip("/"),
                branches=s.texts("branches", ("main",)) or ("main",),
                poll_interval=s.integer("poll_interval", 60, minimum=0),
                targets=tuple(t for t in wanted if t in targets),
                profile=profile,
                features=s.texts("features", ()),
                test=s.flag("test", True),
                binaries=s.texts("binaries", (name,)),
            )
        if not top.has("projects"):
            top.error(1, "projects", "missing required key")
        return projects

    def resolve_source(self, s: Section, source: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*://", source) or source.startswith("git@"):
            return source
        local = (self.base / source).resolve()
        if not local.exists():
            s.error(s.key_line("source"), f"{s.path}.source",
                    f"no such directory: {local} (give a git URL, a file:// URL or a local path)")
        return str(local)


_POOL_KEYS = {
    "local": ("kind", "count"),
    "docker": ("kind", "count", "docker_host", "cpus", "memory"),
    "ec2": ("kind", "max_instances", "region", "ami", "ami_name", "ami_owner", "instance_type",
            "spot", "max_spot_price", "spot_fallback", "subnet_id", "security_group_ids",
            "instance_profile", "keypair_name", "volume_size_gb", "tags", "idle_timeout",
            "connect_timeout", "image_registry"),
}
_POOL_KEYS_ALL = tuple(sorted({k for keys in _POOL_KEYS.values() for k in keys}))
