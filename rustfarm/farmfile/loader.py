"""farm.yaml -> :class:`Farm`, or every problem with its file, line and key."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from rustfarm.targets import HOST_TRIPLE, TargetTable, image_toolchain, target_table

from .errors import FarmFileError, Problem, did_you_mean
from .model import (COMPILE_PROJECT, ArtifactSettings, CargoRegistry, CompileSettings, CrateSource,
                    DbSettings, Farm, FarmSettings, Pool, Project, ScheduleSettings, Target,
                    WwwSettings)
from .database import DB_KEYS, read_db
from .masters import check_masters, read_failover, read_masters, read_router
from .pools import POOL_KEYS, POOL_KEYS_ALL, POOL_KINDS, POOL_READERS, size_bytes
from .reader import NAME_RE, Section, type_name
from .yamlsource import load_yaml

TOP_KEYS = ("farm", "www", "db", "masters", "router", "schedule", "artifacts", "compile", "crates", "workers",
            "targets", "projects", "failover")
PROFILES_BUILTIN = ("release", "dev")
DEFAULT_STATE_DIR = ".farm"
MAX_FILE_BYTES = 2**20


CONTAINER_POOLS = ("docker", "ec2")


def known_triples() -> frozenset[str]:
    text = resources.files("rustfarm.farmfile").joinpath("target_triples.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def load(path: str | Path) -> Farm:
    """Load and validate a farm file; raises :class:`FarmFileError`."""
    path = Path(path).resolve()
    try:
        with path.open("rb") as handle:
            # Never more than the limit: farm.yaml could be /dev/zero or a huge log.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise FarmFileError([Problem(str(path), 0, "", f"cannot read: {err.strerror}")]) from None
    return loads(_decode(data, path), path)


def _refuse(path: Path, line: int, message: str) -> FarmFileError:
    return FarmFileError([Problem(_display_name(path), line, "", message)])


def _decode(data: bytes, path: Path) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(path, 0, f"larger than {MAX_FILE_BYTES // 2**20} MB: not a farm file")
    if b"\0" in data:
        raise _refuse(path, 0, "not a text file (it holds NUL bytes): farm.yaml is YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise _refuse(path, line, f"not UTF-8 text (byte 0x{data[err.start]:02x}): save "
                                  "farm.yaml as UTF-8") from None


def loads(text: str, path: Path) -> Farm:
    problems: list[Problem] = []
    shown = _display_name(path)
    if len(text) > MAX_FILE_BYTES:
        raise _refuse(path, 0, f"larger than {MAX_FILE_BYTES // 2**20} MB: not a farm file")
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


def _registry_index_check(value: str) -> str:
    """A registry's index as cargo takes it: sparse+http(s)://..., or a git index's URL."""
    url = value.removeprefix("sparse+").removeprefix("registry+")
    if not url.startswith(("https://", "http://")) or len(url) <= len("https://"):
        return (f"'{value}' is not a registry index: sparse+https://HOST/PATH/ (a sparse "
                "index) or https://HOST/PATH (a git index)")
    return ""


def _time_check(value: str) -> str:
    return "" if re.match(r"^([01]?\d|2[0-3]):[0-5]\d$", value) else "must be a time HH:MM (24-hour)"


def _name_check(value: str) -> str:
    return "" if NAME_RE.match(value) else "use lower-case letters, digits, '-', '_' and '.'"


# Farm and project names make Docker volume names (workers/docker.py
# cache_volume_name); beyond this the readable part is cut to nothing.
MAX_NAME = 40


def _docker_name_check(value: str) -> str:
    if len(value) > MAX_NAME:
        return (f"at most {MAX_NAME} characters (Docker volume names are made from it), "
                f"not {len(value)}")
    return _name_check(value)


# Kernel interfaces, not places for files.
_NO_STATE_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def _state_dir_problem(state_dir: Path) -> str:
    for tree in _NO_STATE_TREES:
        if state_dir.is_relative_to(tree):
            return f"{state_dir} is under {tree}, which cannot hold the farm's state"
    existing = state_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (f"{existing} is not a directory" if existing == state_dir else
                f"{state_dir} cannot be made: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable: the farm keeps its database, logs and secrets there"
    return ""


# The artifact store is served to anyone: never a directory of the system's own.
_SYSTEM_DIRECTORIES = frozenset(Path(p) for p in (
    "/", "/etc", "/usr", "/proc", "/sys", "/dev", "/boot", "/root", "/home", "/var", "/bin",
    "/sbin", "/lib", "/lib64", "/run", "/tmp", "/opt", "/srv"))
_SYSTEM_TREES = (Path("/etc"), Path("/proc"), Path("/sys"), Path("/dev"), Path("/boot"))
# What rustfarm.state.StateDir keeps in the state directory besides the store.
_STATE_SUBDIRECTORIES = ("master", "workers", "secrets", "run", "container-secrets", "sources",
                         "snapshots")


def _artifact_directory_problem(directory: Path, state_dir: Path, farm_dir: Path) -> str:
    served = "it is served to anyone without a login; give a directory of its own " \
             "(default: artifacts, in the state directory)"
    if directory in _SYSTEM_DIRECTORIES or any(directory.is_relative_to(t) for t in _SYSTEM_TREES):
        return f"{directory} is a system directory: {served}"
    if state_dir.is_relative_to(directory):
        return f"{directory} holds the state directory {state_dir} (secrets, database): {served}"
    if directory.is_relative_to(state_dir) and \
            directory.relative_to(state_dir).parts[0] in _STATE_SUBDIRECTORIES:
        return f"{directory} is part of the farm's own state (secrets, database): {served}"
    if farm_dir.is_relative_to(directory):
        return f"{directory} holds farm.yaml's directory {farm_dir}: {served}"
    home = Path(os.path.expanduser("~"))
    if home.is_absolute() and home.is_relative_to(directory):
        return f"{directory} holds the home directory {home}: {served}"
    return ""


def _toolchain_text(value) -> str:
    """A toolchain as written: YAML reads an unquoted 1.96 as a number."""
    return repr(value) if isinstance(value, float) else str(value)


class _Builder:
    def __init__(self, problems: list[Problem], filename: str, path: Path):
        self.problems = problems
        self.filename = filename
        self.path = path
        self.base = path.parent
        self.table: TargetTable = target_table()

    def section(self, node: Any, path: str, allowed: tuple[str, ...], line: int = 0) -> Section:
        return Section(self.problems, self.filename, node, path, allowed, line)

    def build(self, data: Any) -> Farm:
        top = self.section(data, "", TOP_KEYS, 1)
        www = self.www(top)
        farm = self.farm_settings(top, www)
        pools = self.pools(top)
        for pool in pools.values():
            if pool.kind == "docker" and pool.remote and not farm.master_address:
                key = "docker_hosts" if pool.docker_hosts else "docker_host"
                top.error(top.key_line("workers"), f"workers.{pool.name}.{key}",
                          "a remote Docker engine needs farm.master_address: the address "
                          "its containers reach the master at")
            if pool.kind == "ec2" and not farm.master_address:
                top.error(top.key_line("workers"), f"workers.{pool.name}",
                          "an ec2 pool needs farm.master_address: the address its instances "
                          "reach the master at")
        endpoints = {p.endpoint_url for p in pools.values() if p.kind == "ec2"}
        if len(endpoints) > 1:
            top.error(top.key_line("workers"), "workers",
                      "the ec2 pools of a farm share one endpoint_url (its orphan-instance "
                      f"reaper asks one), not {', '.join(sorted(e or 'none' for e in endpoints))}")
        targets = self.targets(top, pools, farm.toolchain)
        projects = self.projects(top, targets, pools, farm.toolchain)
        for name in projects:
            if len(name) > MAX_NAME:
                top.error(getattr(top.raw("projects"), "key_lines", {}).get(name, 0),
                          f"projects.{name}", f"names are at most {MAX_NAME} characters "
                          f"(Docker volume names are made from them), not {len(name)}")
        db = self.db(top, farm, {www.port: "the web UI's (www.port)",
                                 farm.worker_port: "the workers' (farm.worker_port)"})
        compile_settings = self.compile(top, farm, www, pools, targets, projects)
        masters = read_masters(self.section, top, farm, www)
        router = read_router(self.section, top)
        tessel = compile_settings.tessel_port
        other_ports = {tessel: "compile.tessel_port"} if tessel else {}
        if db.runs_locally:
            other_ports[db.port] = "the local database server's (db)"
        check_masters(top, masters, db, router, other_ports)
        return Farm(
            path=self.path,
            farm=farm,
            www=www,
            db=db,
            schedule=self.schedule(top),
            artifacts=self.artifacts(top, farm),
            compile=compile_settings,
            crates=self.crates(top),
            pools=pools,
            targets=targets,
            projects=projects,
            masters=masters,
            router=router,
            failover=read_failover(self.section, top),
        )

    def farm_settings(self, top: Section, www: WwwSettings) -> FarmSettings:
        s = self.section(top.raw("farm"), "farm",
                         ("name", "title", "url", "state_dir", "worker_port", "worker_host",
                          "master_address", "toolchain"), top.key_line("farm"))
        if not top.has("farm"):
            s.error(1, "farm", "missing required key")
        name = s.text("name", check=_docker_name_check) or "farm"
        url = s.text("url", f"http://{www.host}:{www.port}/", check=_url_check)
        worker_port = s.integer("worker_port", 9989, minimum=1, maximum=65535)
        if worker_port == www.port:
            ui = self.www_section
            line, key = ((ui.key_line("port"), "www.port") if ui.has("port") else
                         (s.key_line("worker_port"), "farm.worker_port"))
            s.error(line, key, f"www.port and farm.worker_port are both {www.port}: the web UI "
                               "and the workers need a port each")
        state_dir = (self.base / s.text("state_dir", DEFAULT_STATE_DIR)).resolve()
        problem = _state_dir_problem(state_dir)
        if problem:
            s.error(s.key_line("state_dir"), "farm.state_dir", problem)
        self.state_dir_refused = bool(problem)
        return FarmSettings(
            name=name,
            title=s.text("title", name),
            url=url if url.endswith("/") else url + "/",
            worker_port=worker_port,
            worker_host=s.text("worker_host", ""),
            master_address=s.text("master_address", ""),
            state_dir=state_dir,
            toolchain=self.toolchain(s, "toolchain", self.table.default_toolchain),
        )

    def toolchain(self, s: Section, key: str, default: str) -> str:
        """A toolchain version the targets table knows, or ``default``."""
        if not s.has(key):
            return default
        raw = s.raw(key)
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            s.error(s.key_line(key), s.key_path(key),
                    f"must be a toolchain version such as \"1.96\", not {type_name(raw)}")
            return default
        version = _toolchain_text(raw)
        if version not in self.table.toolchains:
            quoted = " (write it quoted, e.g. \"1.70\")" if isinstance(raw, float) else ""
            s.error(s.key_line(key), s.key_path(key),
                    f"unknown toolchain '{version}'{quoted}; toolchains: "
                    f"{', '.join(self.table.toolchains)}")
            return default
        return version

    def www(self, top: Section) -> WwwSettings:
        s = self.section(top.raw("www"), "www", ("host", "port", "users"), top.key_line("www"))
        self.www_section = s
        users = s.texts("users", ())
        for index, user in enumerate(users):
            if not re.match(r"^[A-Za-z0-9_.@-]+$", user):
                s.error(s.item_line("users", index), f"www.users[{index}]",
                        "user names use letters, digits, '.', '_', '@' and '-'")
        return WwwSettings(host=s.text("host", "127.0.0.1"),
                           port=s.integer("port", 8010, minimum=1, maximum=65535),
                           users=users)

    def db(self, top: Section, farm: FarmSettings, taken: dict[int, str]) -> DbSettings:
        return read_db(self.section(top.raw("db"), "db", DB_KEYS, top.key_line("db")),
                       farm.state_dir, taken)

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
        directory = (farm.state_dir / s.text("directory", "artifacts")).resolve()
        problem = _artifact_directory_problem(directory, farm.state_dir, self.base)
        # A store left at its default is refused with its state directory, if that is.
        if problem and (s.has("directory") or not self.state_dir_refused):
            s.error(s.key_line("directory"), "artifacts.directory", problem)
        return ArtifactSettings(directory=directory, keep=s.integer("keep", 5, minimum=1))

    def compile(self, top: Section, farm: FarmSettings, www: WwwSettings,
                pools: dict[str, Pool], targets: dict[str, Target],
                projects: dict[str, Project]) -> CompileSettings:
        s = self.section(top.raw("compile"), "compile",
                         ("targets", "max_upload", "max_files", "max_unpacked", "queue", "keep",
                          "tessel_port", "tessel_target", "tessel_anonymous"),
                         top.key_line("compile"))
        # Uploads are anyone's code: they build only where a build cannot reach the host.
        isolated = [t for t, target in targets.items()
                    if pools.get(target.pool) and pools[target.pool].kind in CONTAINER_POOLS]
        chosen = s.texts("targets", tuple(isolated))
        for index, triple in enumerate(chosen or ()):
            if triple not in targets:
                s.error(s.item_line("targets", index), f"compile.targets[{index}]",
                        f"'{triple}' is not a target of this farm"
                        f"{did_you_mean(triple, targets)}")
            elif triple not in isolated:
                s.error(s.item_line("targets", index), f"compile.targets[{index}]",
                        f"'{triple}' builds on pool '{targets[triple].pool}', which runs builds "
                        "on this machine; uploads build only in containers (docker or ec2 "
                        "pools)")
        sizes = {}
        for key, default in (("max_upload", "50m"), ("max_unpacked", "500m")):
            raw = s.raw(key) if s.has(key) else default
            text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) \
                else None
            size = size_bytes(text) if text is not None else None
            if size is None or size < 1024:
                s.error(s.key_line(key), f"compile.{key}",
                        f"must be a size of at least 1k such as 50m, not '{text}'")
                size = size_bytes(default)
            sizes[key] = size
        tessel_port = s.integer("tessel_port", 0, minimum=0, maximum=65535)
        if tessel_port and tessel_port in (www.port, farm.worker_port):
            whose = "the web UI's" if tessel_port == www.port else "the workers'"
            s.error(s.key_line("tessel_port"), "compile.tessel_port",
                    f"port {tessel_port} is already {whose} port")
        default_tessel = next((t for t in ("mipsel-unknown-linux-musl",
                                           "mipsel-unknown-linux-gnu") if t in (chosen or ())),
                              "mipsel-unknown-linux-musl")
        tessel_target = s.text("tessel_target", default_tessel)
        if tessel_port and tessel_target not in (chosen or ()):
            s.error(s.key_line("tessel_target") or s.key_line("tessel_port"),
                    "compile.tessel_target", f"'{tessel_target}' is not one of compile.targets "
                    f"({', '.join(chosen or ()) or 'none'})")
        if COMPILE_PROJECT in projects:
            s.error(getattr(top.raw("projects"), "key_lines", {}).get(COMPILE_PROJECT, 0),
                    f"projects.{COMPILE_PROJECT}", f"the name '{COMPILE_PROJECT}' is the "
                    "compile endpoint's (its builders are compile:<target>); choose another")
        return CompileSettings(
            targets=tuple(chosen or ()),
            max_upload=sizes["max_upload"],
            max_files=s.integer("max_files", 20000, minimum=1),
            max_unpacked=sizes["max_unpacked"],
            queue=s.integer("queue", 8, minimum=1, maximum=1000),
            keep=s.integer("keep", 3600, minimum=60),
            tessel_port=tessel_port,
            tessel_target=tessel_target,
            tessel_anonymous=bool(s.flag("tessel_anonymous", False)),
        )

    def crates(self, top: Section) -> CrateSource:
        s = self.section(top.raw("crates"), "crates", ("directory", "registry", "registries"),
                         top.key_line("crates"))
        if s.has("directory") and s.has("registry"):
            s.error(s.line, "crates", "give either directory or registry, not both")
        registries = []
        for name, node, line in s.children("registries"):
            r = self.section(node, f"crates.registries.{name}", ("index", "token", "uploads"),
                             line)
            if name == "crates-io":
                r.error(line, f"crates.registries.{name}", "crates-io is crates.io itself; "
                        "a mirror of it is crates.registry")
            index = r.text("index", check=_registry_index_check)
            registries.append(CargoRegistry(name, index or "", bool(r.flag("token", False)),
                                            bool(r.flag("uploads", False))))
        if s.has("directory"):
            return CrateSource("directory", s.text("directory"), tuple(registries))
        if s.has("registry"):
            return CrateSource("registry", s.text("registry", check=_registry_index_check),
                               tuple(registries))
        return CrateSource("crates-io", registries=tuple(registries))

    def pools(self, top: Section) -> dict[str, Pool]:
        pools: dict[str, Pool] = {}
        self.declared_pools = set()
        for name, node, line in top.children("workers"):
            self.declared_pools.add(name)
            kind = node.get("kind") if isinstance(node, dict) else None
            if kind in POOL_KINDS:
                s = self.section(node, f"workers.{name}", POOL_KEYS[kind], line)
                pools[name] = POOL_READERS[kind](name, s)
                continue
            s = self.section(node, f"workers.{name}", POOL_KEYS_ALL, line)
            if s.text("kind") is not None:
                s.error(s.key_line("kind"), f"workers.{name}.kind",
                        f"unknown pool kind '{kind}'{did_you_mean(str(kind), POOL_KINDS)}; "
                        f"kinds: {', '.join(POOL_KINDS)}")
        return pools

    def targets(self, top: Section, pools: dict[str, Pool],
                default_toolchain: str) -> dict[str, Target]:
        triples = known_triples()
        targets: dict[str, Target] = {}
        self.target_lines: dict[str, tuple[Section, int]] = {}
        for triple, node, line in top.children("targets"):
            s = self.section(node, f"targets.{triple}",
                             ("pool", "image", "linker", "runner", "env"), line)
            self.target_lines[triple] = (s, line)
            if triple not in triples:
                s.error(line, f"targets.{triple}",
                        f"unknown target triple{did_you_mean(triple, triples)}; rustfarm has "
                        f"images for {', '.join(t.triple for t in self.table)} "
                        "(`farm targets --known` lists every triple rustc knows)")
            pool = s.text("pool")
            if pool is not None and pool not in self.declared_pools:
                defined = ", ".join(sorted(self.declared_pools)) or "none"
                s.error(s.key_line("pool"), f"targets.{triple}.pool",
                        f"no worker pool '{pool}' is defined under workers"
                        f"{did_you_mean(pool, pools)} (defined: {defined})")
            kind = pools[pool].kind if pool in pools else None
            images = self.images(s, triple, default_toolchain)
            if kind in CONTAINER_POOLS and not images and not s.has("image"):
                s.error(line, f"targets.{triple}.image",
                        f"pool '{pool}' runs containers, so the target needs an image")
            env = s.text_mapping("env")
            spec = self.table.targets.get(triple)
            if spec and spec.rustflags and "RUSTFLAGS" in env:
                # RUSTFLAGS replaces the target's own flags: keep them in front.
                env["RUSTFLAGS"] = " ".join((*spec.rustflags, env["RUSTFLAGS"]))
            targets[triple] = Target(triple=triple, pool=pool or "", images=images,
                                     linker=s.text("linker", ""),
                                     runner=s.text("runner", self.default_runner(triple, kind)),
                                     env=env)
        if not top.has("targets"):
            top.error(1, "targets", "missing required key")
        return targets

    def default_runner(self, triple: str, pool_kind: str | None) -> str:
        """How tests run when farm.yaml does not say: the image's runner in a
        container, natively on a local worker of the same machine, else not at all."""
        spec = self.table.targets.get(triple)
        if pool_kind in CONTAINER_POOLS:
            return "image" if spec is None or spec.runs_here else ""
        return "native" if triple == HOST_TRIPLE else ""

    def images(self, s: Section, triple: str, default_toolchain: str) -> dict[str, str]:
        """``image``: one reference or a list; each serves the toolchain its tag
        names (``rustfarm/T:1.96-...``), or the farm's default toolchain."""
        if not s.has("image"):
            return {}
        raw = s.raw("image")
        references = [raw] if isinstance(raw, str) else raw
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
            s.error(s.key_line("image"), f"targets.{triple}.image",
                    f"must be an image reference or a list of them, not {type_name(raw)}")
            return {}
        images: dict[str, str] = {}
        for index, reference in enumerate(references):
            key = f"targets.{triple}.image" + (f"[{index}]" if isinstance(raw, list) else "")
            line = s.item_line("image", index) if isinstance(raw, list) else s.key_line("image")
            if not reference:
                continue
            if not re.match(r"^[a-z0-9][a-z0-9._/:@-]*$", reference, re.IGNORECASE) or \
                    " " in reference:
                s.error(line, key, f"'{reference}' is not an image reference")
                continue
            toolchain = image_toolchain(reference) or default_toolchain
            if toolchain not in self.table.toolchains:
                s.error(line, key, f"the tag names toolchain {toolchain}, which is not one of "
                                   f"{', '.join(self.table.toolchains)}")
                continue
            if toolchain in images:
                s.error(line, key, f"a second image for toolchain {toolchain} "
                                   f"(first: {images[toolchain]})")
                continue
            images[toolchain] = reference
        return images

    def projects(self, top: Section, targets: dict[str, Target], pools: dict[str, Pool],
                 default_toolchain: str) -> dict[str, Project]:
        projects: dict[str, Project] = {}
        for name, node, line in top.children("projects"):
            path = f"projects.{name}"
            s = self.section(node, path, ("source", "subdir", "branches", "poll_interval",
                                          "targets", "profile", "features", "test",
                                          "binaries", "toolchain", "strip", "fetch_timeout"),
                             line)
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
            toolchain = self.toolchain(s, "toolchain", default_toolchain)
            chosen = tuple(t for t in wanted if t in targets)
            self.check_toolchain_images(s, name, toolchain, [targets[t] for t in chosen], pools)
            binaries = s.texts("binaries", ())
            for index, binary in enumerate(binaries):
                if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", binary):
                    s.error(s.item_line("binaries", index) if s.has("binaries") else line,
                            f"{path}.binaries[{index}]",
                            f"'{binary}' is not a binary name: letters, digits, '_', '-' and "
                            "'.', no paths")
            projects[name] = Project(
                name=name,
                source=source or "",
                subdir=s.text("subdir", "").strip("/"),
                branches=s.texts("branches", ("main",)) or ("main",),
                poll_interval=s.integer("poll_interval", 60, minimum=0),
                targets=chosen,
                profile=profile,
                features=s.texts("features", ()),
                test=s.flag("test", True),
                binaries=binaries,
                toolchain=toolchain,
                toolchain_pinned=s.has("toolchain"),
                strip=s.flag("strip", True),
                fetch_timeout=s.integer("fetch_timeout", 600, minimum=1),
            )
        if not top.has("projects"):
            top.error(1, "projects", "missing required key")
        return projects

    def check_toolchain_images(self, s: Section, project: str, toolchain: str,
                               targets: list[Target], pools: dict[str, Pool]) -> None:
        """Every container target of the project has a std and an image for its toolchain."""
        line = s.key_line("toolchain") if s.has("toolchain") else s.line
        for target in targets:
            pool = pools.get(target.pool)
            if pool is None or pool.kind not in CONTAINER_POOLS:
                continue
            spec = self.table.targets.get(target.triple)
            if spec is not None and toolchain not in spec.toolchains:
                s.error(line, f"projects.{project}.toolchain",
                        f"toolchain {toolchain} cannot build {target.triple}: it has no std for "
                        f"it (toolchains that can: {', '.join(spec.toolchains)})")
            elif not target.image_for(toolchain) and target.images:
                target_section, target_line = self.target_lines[target.triple]
                pinned = ", ".join(target.images.values())
                target_section.error(
                    target_section.key_line("image"), f"targets.{target.triple}.image",
                    f"no image for toolchain {toolchain}, which project '{project}' builds "
                    f"with (pinned: {pinned}); add rustfarm/{target.triple}:{toolchain}-... "
                    f"(`farm images build --target {target.triple} --toolchain {toolchain}`"
                    " then `farm images pin`)")

    def resolve_source(self, s: Section, source: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*://", source) or source.startswith("git@"):
            return source
        local = (self.base / source).resolve()
        if not local.exists():
            s.error(s.key_line("source"), f"{s.path}.source",
                    f"no such directory: {local} (give a git URL, a file:// URL or a local path)")
        return str(local)
