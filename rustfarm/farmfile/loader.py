"""farm.yaml -> :class:`Farm`, or every problem with its file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rustfarm.targets import TargetTable, target_table

from .checks import MAX_NAME
from .errors import FarmFileError, Problem
from .model import Farm
from .masters import check_masters, read_failover, read_masters, read_router
from .project_sections import ProjectSections
from .reader import Section
from .settings_sections import SettingsSections
from .target_sections import TargetSections
from .yamlsource import load_yaml

TOP_KEYS = ("farm", "www", "db", "masters", "router", "schedule", "artifacts", "compile", "crates", "workers",
            "targets", "projects", "failover", "notify")
MAX_FILE_BYTES = 2**20




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
    farm = FarmReader(problems, shown, path).build(data)
    if problems:
        raise FarmFileError(problems)
    return farm


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class FarmReader(SettingsSections, TargetSections, ProjectSections):
    """Reads farm.yaml's data into a Farm, collecting every problem with its line and
    key; each section's reader lives with its kind (settings_sections.py,
    target_sections.py, project_sections.py)."""

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
            notify=self.notify(top),
        )
