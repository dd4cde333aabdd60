"""A project's Cargo.lock, read as data (never by running cargo in the project): the
packages it pins, and the cargo configuration that builds them from the farm's
crate store instead of their registries and repositories.

A package is a registry's (``registry+URL`` or ``sparse+URL``, with the checksum of
its .crate), a git repository's (``git+URL?ref#commit``) or the project's own (no
source: a path dependency, or a member of its workspace).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .errors import FarmError

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
CRATES_IO_SPARSE = "sparse+https://index.crates.io/"
# The name of the directory source that stands for every registry and repository.
STORE_SOURCE = "rustfarm-crates"


class LockError(FarmError):
    """A Cargo.lock the farm cannot read."""


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    source: str | None = None
    checksum: str | None = None

    @property
    def kind(self) -> str:
        if self.source is None:
            return "path"
        if self.source.startswith("git+"):
            return "git"
        return "registry"

    @property
    def commit(self) -> str:
        """A git package's commit (after the source's '#')."""
        return (self.source or "").rpartition("#")[2]

    @property
    def store_key(self) -> str:
        """Its entry in the crate store: name, version and what pins its content (the
        .crate's checksum, or the commit)."""
        pin = self.checksum if self.kind == "registry" else self.commit
        return f"{self.kind}/{self.name}-{self.version}-{(pin or '')[:20]}"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def read_lock(text: str, where: str = "Cargo.lock") -> list[LockedPackage]:
    """The packages of a Cargo.lock (format 1 to 4); LockError saying what is wrong."""
    try:
        lock = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LockError(f"{where}: not a Cargo.lock: {err}") from None
    checksums = {}
    for key, value in lock.get("metadata", {}).items():
        # Format 1 keeps checksums apart: "checksum NAME VERSION (SOURCE)".
        if key.startswith("checksum ") and value != "<none>":
            name, version, source = key[len("checksum "):].split(" ", 2)
            checksums[(name, version, source.strip("()"))] = value
    packages = []
    for number, entry in enumerate(lock.get("package", []), 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("version"), str):
            raise LockError(f"{where}: package {number} has no name or version")
        source = entry.get("source")
        checksum = entry.get("checksum") or checksums.get((entry["name"], entry["version"],
                                                            source))
        package = LockedPackage(entry["name"], entry["version"], source, checksum)
        if package.kind == "registry" and not checksum:
            raise LockError(f"{where}: {package} from {source} has no checksum")
        if package.kind == "git" and "#" not in (source or ""):
            raise LockError(f"{where}: {package} from {source} names no commit")
        packages.append(package)
    return packages


def git_source_config(source: str) -> tuple[str, dict]:
    """The [source] table that stands for a git package's repository, as cargo vendor
    writes it: keyed by the source without its commit, giving the URL and the ref."""
    replaced = source.partition("#")[0]
    url = urlsplit(replaced[len("git+"):])
    table = {"git": url._replace(query="", fragment="").geturl()}
    for key, value in parse_qsl(url.query):
        if key in ("branch", "tag", "rev"):
            table[key] = value
    return replaced, table


def registry_name(source: str) -> str | None:
    """crates-io for crates.io's index (either protocol), None for another registry."""
    return "crates-io" if source in (CRATES_IO, CRATES_IO_SPARSE) else None


def store_config(packages: list[LockedPackage], directory: str,
                 registries: dict[str, str] | None = None) -> dict:
    """Cargo configuration (a TOML document as a dict) that takes every registry and
    git package of ``packages`` from the directory source ``directory``; the other
    ``registries`` (name: index) that manifests name, which cargo looks up by name."""
    sources: dict[str, dict] = {STORE_SOURCE: {"directory": directory}}
    for package in packages:
        if package.kind == "path":
            continue
        if package.kind == "git":
            key, table = git_source_config(package.source)
        elif registry_name(package.source):
            key, table = "crates-io", {}
        else:
            key, table = package.source, {"registry": package.source}
        sources[key] = {**table, "replace-with": STORE_SOURCE}
    config = {"source": sources}
    if registries:
        config["registries"] = {name: {"index": index} for name, index in registries.items()}
    return config


def toml_text(document: dict) -> str:
    """A TOML document of tables of strings, as cargo's configuration needs it."""
    lines = []

    def key(name: str) -> str:
        return name if name.replace("-", "").replace("_", "").isalnum() else quoted(name)

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    for section, tables in document.items():
        for name, table in tables.items():
            lines.append(f"[{section}.{key(name)}]")
            lines += [f"{key(k)} = {quoted(v)}" for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def package_id_name_version(package_id: str) -> tuple[str, str] | None:
    """(name, version) of a cargo package id: ``SOURCE#NAME@VERSION`` (cargo 1.77 and
    later), ``SOURCE#VERSION`` (the name is the source's last path part) or the old
    ``NAME VERSION (SOURCE)``."""
    if " " in package_id and "#" not in package_id:
        parts = package_id.split(" ")
        return (parts[0], parts[1]) if len(parts) >= 2 else None
    source, _, fragment = package_id.rpartition("#")
    if "@" in fragment:
        name, _, version = fragment.rpartition("@")
        return name, version
    name = source.rstrip("/").rpartition("/")[2].partition("?")[0]
    return (name, fragment) if name and fragment else None
