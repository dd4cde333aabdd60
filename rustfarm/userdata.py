"""EC2 user-data for a rustfarm worker instance, as the AMI's boot program reads it.

The format (``#rustfarm-worker v1``, then one ``KEY=VALUE`` a line) is ami/README.md's.
One module reads and checks it on both sides: the master renders it
(:func:`render_user_data`), farm.yaml's loader checks a pool's values
(:func:`value_problem`), and on the instance the boot program (ami/rustfarm-boot)
imports it from where provision.sh installs it and calls :func:`read_settings`. It
needs Python 3.9 and its standard library alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = "#rustfarm-worker v1"
REQUIRED_KEYS = ("image", "master", "port", "name", "password")
CACHE_KEYS = ("cache_bucket", "cache_prefix", "cache_region", "cache_endpoint",
              "cache_read_only")
# The keys a cache needs, given any cache key.
CACHE_REQUIRED_KEYS = ("cache_bucket", "cache_prefix", "cache_region")
OPTIONAL_KEYS = ("memory", "cpus", "pids_limit", "max_lifetime") + CACHE_KEYS

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_COMPONENT = r"[a-z0-9]+([._-]+[a-z0-9]+)*"
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_REPOSITORY = re.compile(
    rf"{_COMPONENT}(/{_COMPONENT})*:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}(@sha256:[0-9a-f]{{64}})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UserDataError(ValueError):
    """User-data that the boot program would refuse."""


@dataclass(frozen=True)
class WorkerUserData:
    image: str
    master: str
    port: int
    name: str
    password: str
    memory: str | None = None
    cpus: str | None = None
    pids_limit: int | None = None
    max_lifetime: int | None = None
    cache_bucket: str | None = None
    cache_prefix: str | None = None
    cache_region: str | None = None
    cache_endpoint: str | None = None
    cache_read_only: bool = False

    def __repr__(self) -> str:
        # Keeps the password out of tracebacks and log lines that print us.
        return (f"WorkerUserData(image={self.image!r}, master={self.master!r}, "
                f"port={self.port}, name={self.name!r}, password=<hidden>)")


def image_problem(image: str) -> str | None:
    """Why the boot program would refuse this image reference, or None."""
    if "/" in image:
        registry, rest = image.split("/", 1)
        if (_REGISTRY.fullmatch(registry)
                and ("." in registry or ":" in registry or registry == "localhost")
                and _REPOSITORY.fullmatch(rest)):
            return None
    return ("must be REGISTRY/REPOSITORY:TAG, with a registry host (a name with a dot "
            "or a port, or localhost), for example registry.example.com/rustfarm/worker:1")


def value_problem(key: str, value: str) -> str | None:
    """Why the boot program would refuse VALUE for KEY, or None."""
    if key == "image":
        return image_problem(value)
    if key == "master":
        if len(value) <= 253 and re.fullmatch(rf"{_LABEL}(\.{_LABEL})*", value):
            return None
        return "must be a host name or an IPv4 address"
    if key == "port":
        if re.fullmatch(r"[0-9]{1,5}", value) and 1 <= int(value) <= 65535:
            return None
        return "must be a TCP port number (1-65535)"
    if key == "name":
        if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,49}", value):
            return None
        return "must be 1-50 characters from A-Z a-z 0-9 . _ -, not starting with ."
    if key == "password":
        if value and len(value) <= 1024 and not _CONTROL.search(value):
            return None
        return "must be 1-1024 characters without control characters"
    if key == "memory":
        return None if re.fullmatch(r"[1-9][0-9]{0,12}[bkmg]?", value) else (
            "must be a whole number with an optional unit b, k, m or g (Docker's --memory)")
    if key == "cpus":
        return None if (re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,3})?", value)
                        and re.search(r"[1-9]", value)) else (
            "must be a positive number such as 2 or 1.5 (Docker's --cpus)")
    if key == "pids_limit":
        return None if re.fullmatch(r"[1-9][0-9]{0,8}", value) else (
            "must be a positive whole number (Docker's --pids-limit)")
    if key == "max_lifetime":
        return None if re.fullmatch(r"[1-9][0-9]{0,6}", value) else (
            "must be a whole number of seconds, 1 to 9999999")
    if key == "cache_bucket":
        return None if re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) \
            and ".." not in value else "must be an S3 bucket name (3-63 of a-z 0-9 . -)"
    if key == "cache_prefix":
        parts = value.split("/")[:-1]
        return None if (re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", value) and value.endswith("/")
                        and all(part not in ("", ".", "..") for part in parts)) else (
            "must be a key prefix such as farm/ (A-Z a-z 0-9 . _ - /, ending with /,"
            " no empty, . or .. part)")
    if key == "cache_region":
        return None if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", value) else (
            "must be an AWS region such as eu-west-1")
    if key == "cache_endpoint":
        return None if re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", value) else (
            "must be http(s)://HOST[:PORT]")
    if key == "cache_read_only":
        return None if value in ("yes", "no") else "must be yes or no"
    return None


def _describe(key: str, value: str, problem: str) -> str:
    if key == "password":
        return f"key 'password' {problem}"
    shown = _CONTROL.sub("?", value)
    if len(shown) > 80:
        shown = shown[:80] + "..."
    return f"key '{key}' {problem}, not '{shown}'"


def render_user_data(*, image: str, master: str, port: int, name: str, password: str,
                     memory: str | None = None, cpus: str | float | None = None,
                     pids_limit: int | None = None, max_lifetime: int | None = None,
                     cache_bucket: str | None = None, cache_prefix: str | None = None,
                     cache_region: str | None = None, cache_endpoint: str | None = None,
                     cache_read_only: bool = False) -> str:
    """The user-data text for one worker instance; raises UserDataError if invalid."""
    values = {"image": image, "master": master, "port": str(port), "name": name,
              "password": password}
    optional = {"memory": memory, "cpus": cpus, "pids_limit": pids_limit,
                "max_lifetime": max_lifetime, "cache_bucket": cache_bucket,
                "cache_prefix": cache_prefix, "cache_region": cache_region,
                "cache_endpoint": cache_endpoint,
                "cache_read_only": "yes" if cache_read_only else None}
    values.update({k: str(v) for k, v in optional.items() if v is not None})
    problems = _cache_problems(values)
    for key, value in values.items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            problems.append(f"key '{key}' must be a single line of text")
            continue
        problem = value_problem(key, value)
        if problem:
            problems.append(_describe(key, value, problem))
    if problems:
        raise UserDataError("; ".join(problems))
    return "".join([MARKER, "\n"] + [f"{key}={value}\n" for key, value in values.items()])


def read_settings(text: str | bytes) -> tuple[dict[str, str], list[str]]:
    """The settings of user-data text, and every problem found (none: they are valid)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return {}, ["user-data is not UTF-8 text"]
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    first = lines[0].rstrip("\r") if lines else ""
    if first != MARKER:
        version = re.fullmatch(r"#rustfarm-worker ([A-Za-z0-9.]{1,10})", first)
        if version:
            return {}, [f"line 1: user-data version '{version.group(1)}' is not supported; "
                        f"this AMI reads '{MARKER}'"]
        return {}, [f"line 1: user-data must start with the line '{MARKER}'"]
    settings: dict[str, str] = {}
    problems = []
    for number, line in enumerate(lines[1:], start=2):
        line = line.removesuffix("\r")
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            problems.append(f"line {number}: not a KEY=VALUE line")
            continue
        key, value = line.split("=", 1)
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            shown = f" '{key}'" if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", key) else ""
            problems.append(f"line {number}: unknown key{shown}")
        elif key in settings:
            problems.append(f"line {number}: key '{key}' is given twice")
        else:
            settings[key] = value
    problems += [f"missing key '{key}'" for key in REQUIRED_KEYS if key not in settings]
    problems += _cache_problems(settings)
    for key in REQUIRED_KEYS + OPTIONAL_KEYS:
        if key in settings:
            problem = value_problem(key, settings[key])
            if problem:
                problems.append(_describe(key, settings[key], problem))
    return settings, problems


def _cache_problems(settings: dict[str, str]) -> list[str]:
    given = [key for key in CACHE_KEYS if key in settings]
    missing = [key for key in CACHE_REQUIRED_KEYS if key not in settings]
    if given and missing:
        return [f"key '{given[0]}' needs {', '.join(repr(k) for k in missing)} too"]
    return []


def parse_user_data(text: str | bytes) -> WorkerUserData:
    """Read user-data as the boot program does; raises UserDataError listing every problem."""
    settings, problems = read_settings(text)
    if problems:
        raise UserDataError("; ".join(problems))
    return WorkerUserData(
        image=settings["image"], master=settings["master"], port=int(settings["port"]),
        name=settings["name"], password=settings["password"],
        memory=settings.get("memory"), cpus=settings.get("cpus"),
        pids_limit=int(settings["pids_limit"]) if "pids_limit" in settings else None,
        max_lifetime=int(settings["max_lifetime"]) if "max_lifetime" in settings else None,
        cache_bucket=settings.get("cache_bucket"), cache_prefix=settings.get("cache_prefix"),
        cache_region=settings.get("cache_region"),
        cache_endpoint=settings.get("cache_endpoint"),
        cache_read_only=settings.get("cache_read_only") == "yes")
