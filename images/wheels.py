"""Pinned wheels the images install, downloaded on the host into a cache.

pip inside a container cannot verify the package index's certificate here, so
the images install from wheels the host fetched: buildbot-worker for CPython
3.11 (Debian bookworm's python3) on manylinux x86_64, pinned with hashes in
worker/requirements.txt, and zig (rust/zig-requirements.txt). The cache lives
outside the repository, by default ~/.cache/rustfarm/wheels
(RUSTFARM_WHEEL_CACHE overrides it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rustfarm.errors import ImagesError
from rustfarm.plumbing import file_sha256

# The wheels' platform, whatever the host's Python is.
PLATFORM_ARGS = [
    "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64",
    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_12_x86_64", "--platform", "manylinux2010_x86_64",
    "--platform", "manylinux_2_5_x86_64", "--platform", "manylinux1_x86_64",
    "--platform", "any",
]


class WheelError(ImagesError):
    """The pinned wheels could not be had."""


@dataclass(frozen=True)
class WheelPin:
    name: str
    version: str
    sha256: str


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "rustfarm" / "wheels"
    return Path(os.environ.get("RUSTFARM_WHEEL_CACHE", default))


def read_pins(requirements: Path) -> tuple[WheelPin, ...]:
    """``name==version --hash=sha256:...`` entries of a requirements file."""
    text = requirements.read_text().replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if not match:
            raise WheelError(f"{requirements}: expected 'name==version --hash=sha256:...'"
                             f" with one hash, got {line!r}")
        pins.append(WheelPin(*match.groups()))
    return tuple(pins)


def _cached(pins: tuple[WheelPin, ...], directory: Path) -> dict[str, Path]:
    wanted = {pin.sha256 for pin in pins}
    found = {}
    if directory.is_dir():
        for path in directory.glob("*.whl"):
            digest = file_sha256(path)
            if digest in wanted:
                found[digest] = path
    return found


def ensure_wheels(pins: tuple[WheelPin, ...], directory: Path | None = None,
                  log=print) -> list[Path]:
    """The pinned wheels, downloaded into the cache if any is missing there."""
    directory = directory or cache_dir()
    found = _cached(pins, directory)
    if len(found) < len(pins):
        missing = [f"{p.name}=={p.version}" for p in pins if p.sha256 not in found]
        log(f"    downloading {len(missing)} wheel(s) into {directory}: {', '.join(missing)}")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
            requirements.write("".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n"
                                       for p in pins))
            requirements.flush()
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                       "--require-hashes", "-r", requirements.name, "-d", str(directory),
                       *PLATFORM_ARGS]
            done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise WheelError("pip download of the images' wheels failed:\n"
                             + done.stderr.strip()[-2000:])
        found = _cached(pins, directory)
    missing = [f"{p.name}=={p.version}" for p in pins if p.sha256 not in found]
    if missing:
        raise WheelError(f"no wheel in {directory} matches the pinned hash of: "
                         + ", ".join(missing))
    return [found[p.sha256] for p in pins]
