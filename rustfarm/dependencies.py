"""A build's dependencies, fetched on the farm's machine into its crate store, never by
running the project's code.

The Cargo.lock is read as data (cargo_lock.py). Only when the store lacks a package,
or the project has no Cargo.lock, does cargo run here, and then on a copy of the
project's files without its ``.cargo/`` directories and toolchain files, from a
working directory outside it: cargo reads its configuration from the working
directory's parents and CARGO_HOME, so the project's ``build.rustc``,
``build.rustc-wrapper``, runners and linkers are not read at all, and neither
``cargo generate-lockfile`` nor ``cargo vendor`` builds anything (no build script,
no proc-macro). Cargo's home is the farm's own; the configuration of this machine's
cargo (a mirror of crates.io, other registries) is given to it, and the tokens of
farm.yaml's registries come from the farm's secret store in its environment alone.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .cargo_lock import CRATES_IO, CRATES_IO_SPARSE, LockedPackage, LockError, read_lock
from .crate_store import CrateStore, Pruned
from .errors import FarmError
from .farmfile.crate_source import CargoRegistry

# What a project may keep that makes cargo run a program of its choice, or pick a
# toolchain: left out of the copy cargo resolves and fetches from.
NOT_COPIED = (".cargo", "rust-toolchain", "rust-toolchain.toml", "target", ".git")
# The variables of the farm's environment that cargo may read while resolving and
# fetching: where it is, the network's settings, cargo's own network settings.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN",
             "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
             "SSL_CERT_FILE", "SSL_CERT_DIR")
PASSED_ON_PREFIXES = ("CARGO_HTTP_", "CARGO_NET_")


class DependencyError(FarmError):
    """Dependencies that cannot be resolved or fetched: the reason, and cargo's words."""


@dataclass
class Fetched:
    packages: list[LockedPackage]             # from registries and git
    downloaded: list[LockedPackage] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    lock_path: str = "Cargo.lock"             # in the project, relative to its root
    resolved_lock: str | None = None          # the lock the farm resolved (none given)
    lock_text: str = ""                       # the lock the build uses (given or resolved)
    resolve_seconds: float = 0.0
    fetch_seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    pruned: Pruned = field(default_factory=Pruned)   # unused entries the store let go


@dataclass(frozen=True)
class CargoSettings:
    """How the farm runs cargo to resolve and fetch."""

    cargo_home: Path                          # the farm's own
    config_files: tuple[Path, ...] = ()       # this machine's cargo configuration
    config: tuple[str, ...] = ()              # farm.yaml's (``--config`` values)
    registries: tuple[CargoRegistry, ...] = ()   # farm.yaml's other registries
    secrets: Path | None = None               # the secret store with their tokens
    cargo: str = "cargo"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k in PASSED_ON or k.startswith(PASSED_ON_PREFIXES)}
        env["CARGO_HOME"] = str(self.cargo_home)
        env["CARGO_TERM_COLOR"] = "never"
        # Read from the secret store now, for this command alone.
        for registry in self.registries:
            if registry.token and self.secrets is not None:
                token = (self.secrets / registry.secret_name).read_text().strip() \
                    if (self.secrets / registry.secret_name).is_file() else ""
                name = registry.name.upper().replace("-", "_").replace(".", "_")
                env[f"CARGO_REGISTRIES_{name}_TOKEN"] = token
        return env

    def command(self, *args: str) -> list[str]:
        configs = [item for path in self.config_files if path.is_file()
                   for item in ("--config", str(path))]
        values = [*self.config, *(f'registries.{r.name}.index="{r.index}"'
                                  for r in self.registries)]
        if any(r.token for r in self.registries):
            # Cargo sends a registry's token only with a credential provider: its own,
            # which reads CARGO_REGISTRIES_<NAME>_TOKEN.
            values.append('registry.global-credential-providers=["cargo:token"]')
        configs += [item for value in values for item in ("--config", value)]
        return [self.cargo, *args[:1], *configs, *args[1:]]

    @property
    def upload_sources(self) -> tuple[str, ...]:
        """Where an upload's crates may come from: crates.io, and the registries farm.yaml
        allows uploads."""
        return UPLOAD_SOURCES + tuple(r.source for r in self.registries if r.uploads)

    @property
    def upload_registries(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.registries if r.uploads)


def machine_config_files() -> tuple[Path, ...]:
    """This machine's cargo configuration files (its user's cargo home's)."""
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    return tuple(home / name for name in ("config.toml", "config"))


def _relative(name: str) -> str:
    """A member's path relative to the project's root ("a/b", "" for the root)."""
    return "/".join(part for part in PurePosixPath(name).parts if part not in (".", "/"))


def lock_location(names: set[str], crate_dir: str) -> str | None:
    """The project's Cargo.lock: beside the crate's Cargo.toml or in a directory above
    it (its workspace's), as cargo finds it; None without one."""
    parts = _relative(crate_dir).split("/") if _relative(crate_dir) else []
    for depth in range(len(parts), -1, -1):
        candidate = "/".join([*parts[:depth], "Cargo.lock"])
        if candidate in names:
            return candidate
    return None


def _files(snapshot: Path) -> dict[str, bytes | None]:
    """The snapshot's regular files by their path in the project; the Cargo.locks with
    their content (None for the others)."""
    found = {}
    with tarfile.open(snapshot, "r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = _relative(member.name)
            if name == "Cargo.lock" or name.endswith("/Cargo.lock"):
                stream = tar.extractfile(member)
                found[name] = stream.read() if stream else b""
            else:
                found[name] = None
    return found


# The tables of a manifest that name dependencies, besides those under target.<cfg>.
DEPENDENCY_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")
# Where an upload's crates may come from: crates.io (or the mirror that stands for it).
UPLOAD_SOURCES = (CRATES_IO, CRATES_IO_SPARSE)


def _dependency_specs(manifest: dict):
    """(table, name, spec) of every dependency a manifest names, patches and
    replacements included."""
    tables = [(name, manifest.get(name, {})) for name in DEPENDENCY_TABLES]
    for cfg, platform in manifest.get("target", {}).items():
        tables += [(f"target.{cfg}.{name}", platform.get(name, {}))
                   for name in DEPENDENCY_TABLES]
    tables.append(("workspace.dependencies",
                   manifest.get("workspace", {}).get("dependencies", {})))
    tables += [(f"patch.{source}", table) for source, table in manifest.get("patch", {}).items()]
    tables.append(("replace", manifest.get("replace", {})))
    for table_name, table in tables:
        if isinstance(table, dict):
            for name, spec in table.items():
                yield table_name, name, spec


def upload_problems(snapshot: Path, registries: tuple[str, ...] = ()) -> list[str]:
    """Why an uploaded project's dependencies may not be fetched: anything but crates.io
    and ``registries`` (a git repository, another registry) and paths outside the
    upload. Anyone may upload; the farm fetches for uploads from those alone."""
    problems = []
    with tarfile.open(snapshot, "r:*") as tar:
        for member in tar:
            name = _relative(member.name)
            if not member.isfile() or PurePosixPath(name).name != "Cargo.toml":
                continue
            try:
                manifest = tomllib.loads(tar.extractfile(member).read().decode())
            except (ValueError, UnicodeDecodeError) as err:
                problems.append(f"{name}: not a manifest cargo reads: {err}")
                continue
            base = PurePosixPath(name).parent
            for table, dependency, spec in _dependency_specs(manifest):
                if not isinstance(spec, dict):
                    continue
                where = f"{name}: [{table}] {dependency}"
                if "git" in spec:
                    problems.append(f"{where}: git dependencies are not fetched for uploads")
                if spec.get("registry", "crates-io") not in ("crates-io", *registries) \
                        or "registry-index" in spec:
                    problems.append(f"{where}: uploads take crates from crates.io only"
                                    + (f" and {', '.join(registries)}" if registries else ""))
                path = spec.get("path")
                if isinstance(path, str) and (path.startswith("/") or not _inside(base, path)):
                    problems.append(f"{where}: path {path} is outside the upload")
    return problems


def _inside(base: PurePosixPath, path: str) -> bool:
    depth = len(base.parts)
    for part in PurePosixPath(path).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


def _copy_without_config(snapshot: Path, into: Path) -> None:
    """The project's files, without what would make cargo run its programs."""
    with tarfile.open(snapshot, "r:*") as tar:
        members = [m for m in tar.getmembers()
                   if not set(PurePosixPath(m.name).parts) & set(NOT_COPIED)]
        tar.extractall(into, members=members, filter="data")


def run_cargo(settings: CargoSettings, args: list[str], cwd: Path, what: str) -> str:
    """The farm's own cargo run as ``settings`` say; its standard error, or a
    DependencyError that says ``what`` failed with cargo's last lines."""
    done = subprocess.run(settings.command(*args), cwd=cwd, env=settings.environment(),
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise DependencyError(f"{what} failed: " + "\n".join(lines[-15:]))
    return done.stderr


def _fetch(settings: CargoSettings, manifest: Path, work: Path, store: CrateStore,
           missing: list[LockedPackage]) -> str:
    """``missing`` into the store, by cargo vendor; its words."""
    said = run_cargo(settings, ["vendor", "--locked", "--versioned-dirs", "--respect-source-config",
                           "--manifest-path", str(manifest), str(work / "vendor")],
                work, "fetching the dependencies (cargo vendor)")
    for package in missing:
        unpacked = work / "vendor" / f"{package.name}-{package.version}"
        if not unpacked.is_dir():
            raise DependencyError(f"cargo vendor did not fetch {package}")
        try:
            store.add(package, unpacked)
        except ValueError as err:
            raise DependencyError(f"fetched {package} is not what Cargo.lock pins: "
                                  f"{err}") from None
    return said


def fetch_dependencies(snapshot: Path, crate_dir: str, store: CrateStore,
                       settings: CargoSettings, upload: bool = False) -> Fetched:
    """Every registry and git package of the project in ``snapshot`` (a .tar.gz of its
    files; its crate in ``crate_dir``) in ``store``: checked there, fetched when
    missing; and the Cargo.lock resolved when the project has none. An ``upload``'s
    come from crates.io alone."""
    started = time.monotonic()
    if upload:
        problems = upload_problems(snapshot, settings.upload_registries)
        if problems:
            raise DependencyError("; ".join(problems[:5]))
    files = _files(snapshot)
    lock_path = lock_location(set(files), crate_dir)
    resolved = None
    packages = None
    if lock_path:
        try:
            packages = read_lock(files[lock_path].decode(errors="replace"), lock_path)
        except LockError as err:
            raise DependencyError(str(err)) from None
        check = store.check(packages)
        if not check.missing:
            return Fetched([p for p in packages if p.kind != "path"], lock_path=lock_path,
                           lock_text=files[lock_path].decode(errors="replace"),
                           resolve_seconds=time.monotonic() - started)
    with tempfile.TemporaryDirectory(prefix="rustfarm-fetch-") as scratch:
        work = Path(scratch)
        project = work / "project"
        _copy_without_config(snapshot, project)
        manifest = project / crate_dir / "Cargo.toml"
        if not manifest.is_file():
            raise DependencyError(f"{(PurePosixPath(crate_dir) / 'Cargo.toml').as_posix()}"
                                  " is not in the project")
        log = []
        if packages is None:
            log.append(run_cargo(settings, ["generate-lockfile", "--manifest-path", str(manifest)],
                            work, "resolving the dependencies (cargo generate-lockfile)"))
            lock_path = lock_location({p.relative_to(project).as_posix()
                                       for p in project.rglob("Cargo.lock")}, crate_dir)
            if lock_path is None:
                raise DependencyError("cargo generate-lockfile wrote no Cargo.lock")
            resolved = (project / lock_path).read_text()
            packages = read_lock(resolved, f"{lock_path} (resolved)")
            check = store.check(packages)
        if upload:
            foreign = [f"{p} from {p.source}" for p in packages
                       if p.kind != "path" and p.source not in settings.upload_sources]
            if foreign:
                raise DependencyError("uploads take crates from crates.io only: "
                                      + ", ".join(foreign[:5]))
        resolve_seconds = time.monotonic() - started
        fetch_started = time.monotonic()
        with store.fetching():
            # What another build fetched meanwhile is not fetched again.
            altered = check.altered
            check = store.check(packages)
            check.altered += altered
            pruned = Pruned()
            if check.missing:
                log.append(_fetch(settings, manifest, work, store, check.missing))
                pruned = store.prune()
    return Fetched([p for p in packages if p.kind != "path"], downloaded=check.missing,
                   altered=check.altered, lock_path=lock_path, resolved_lock=resolved,
                   lock_text=resolved if resolved is not None
                   else files[lock_path].decode(errors="replace"),
                   resolve_seconds=resolve_seconds,
                   fetch_seconds=time.monotonic() - fetch_started,
                   log=[line for text in log for line in text.splitlines()], pruned=pruned)
