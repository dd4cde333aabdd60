"""The checks of farm.yaml's values that the section readers share: each returns what
is wrong with a value ("" when nothing is), for a problem with its line and key."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from .reader import NAME_RE

PROFILES_BUILTIN = ("release", "dev")
DEFAULT_STATE_DIR = ".farm"
CONTAINER_POOLS = ("docker", "ec2")


def known_triples() -> frozenset[str]:
    text = resources.files("rustfarm.farmfile").joinpath("target_triples.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def url_check(value: str) -> str:
    return "" if re.match(r"^https?://[^/\s]+(/.*)?$", value) else "must be an http:// or https:// URL"


def email_check(value: str) -> str:
    return "" if re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value) else \
        f"'{value}' is not a mail address (name@example.com)"


def host_port_check(value: str) -> str:
    match = re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:(\d+))?$", value)
    if not match or (match.group(3) and not 1 <= int(match.group(3)) <= 65535):
        return f"'{value}' is not HOST or HOST:PORT (e.g. smtp.example.com:587)"
    return ""


def forge_repository_check(value: str, subgroups: bool = False) -> str:
    """A forge's repository as its URLs name it: owner/name (GitLab: group/sub/name)."""
    part = r"[A-Za-z0-9_.-]+"
    pattern = rf"^{part}(/{part})+$" if subgroups else rf"^{part}/{part}$"
    if re.match(pattern, value) and not value.endswith(".git"):
        return ""
    shape = "group/name or group/subgroup/name" if subgroups else "owner/name"
    return f"'{value}' is not a repository: {shape}, as in the forge's URLs (no .git)"


def registry_index_check(value: str) -> str:
    """A registry's index as cargo takes it: sparse+http(s)://..., or a git index's URL."""
    url = value.removeprefix("sparse+").removeprefix("registry+")
    if not url.startswith(("https://", "http://")) or len(url) <= len("https://"):
        return (f"'{value}' is not a registry index: sparse+https://HOST/PATH/ (a sparse "
                "index) or https://HOST/PATH (a git index)")
    return ""


def time_check(value: str) -> str:
    return "" if re.match(r"^([01]?\d|2[0-3]):[0-5]\d$", value) else "must be a time HH:MM (24-hour)"


def name_check(value: str) -> str:
    return "" if NAME_RE.match(value) else "use lower-case letters, digits, '-', '_' and '.'"


# Farm and project names make Docker volume names (workers/docker_volumes.py
# cache_volume_name); beyond this the readable part is cut to nothing.
MAX_NAME = 40


def docker_name_check(value: str) -> str:
    if len(value) > MAX_NAME:
        return (f"at most {MAX_NAME} characters (Docker volume names are made from it), "
                f"not {len(value)}")
    return name_check(value)


# Kernel interfaces, not places for files.
NO_STATE_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def state_dir_problem(state_dir: Path) -> str:
    for tree in NO_STATE_TREES:
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
SYSTEM_DIRECTORIES = frozenset(Path(p) for p in (
    "/", "/etc", "/usr", "/proc", "/sys", "/dev", "/boot", "/root", "/home", "/var", "/bin",
    "/sbin", "/lib", "/lib64", "/run", "/tmp", "/opt", "/srv"))
SYSTEM_TREES = (Path("/etc"), Path("/proc"), Path("/sys"), Path("/dev"), Path("/boot"))
# What rustfarm.state.StateDir keeps in the state directory besides the store.
STATE_SUBDIRECTORIES = ("master", "workers", "secrets", "run", "container-secrets", "sources",
                         "snapshots")


def artifact_directory_problem(directory: Path, state_dir: Path, farm_dir: Path) -> str:
    served = "it is served to anyone without a login; give a directory of its own " \
             "(default: artifacts, in the state directory)"
    if directory in SYSTEM_DIRECTORIES or any(directory.is_relative_to(t) for t in SYSTEM_TREES):
        return f"{directory} is a system directory: {served}"
    if state_dir.is_relative_to(directory):
        return f"{directory} holds the state directory {state_dir} (secrets, database): {served}"
    if directory.is_relative_to(state_dir) and \
            directory.relative_to(state_dir).parts[0] in STATE_SUBDIRECTORIES:
        return f"{directory} is part of the farm's own state (secrets, database): {served}"
    if farm_dir.is_relative_to(directory):
        return f"{directory} holds farm.yaml's directory {farm_dir}: {served}"
    home = Path(os.path.expanduser("~"))
    if home.is_absolute() and home.is_relative_to(directory):
        return f"{directory} holds the home directory {home}: {served}"
    return ""


def toolchain_text(value) -> str:
    """A toolchain as written: YAML reads an unquoted 1.96 as a number."""
    return repr(value) if isinstance(value, float) else str(value)
