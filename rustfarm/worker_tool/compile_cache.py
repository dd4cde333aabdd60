"""``compile-cache setup`` and ``compile-cache stats``: the build's shared compile
cache, where its pool gives it one.

A docker pool mounts its (toolchain, target) cache at RUSTFARM_COMPILE_CACHE: the
farm's crate cache (crate_cache.py) takes the dependencies, rustc the project's own
crates (the pool keeps each project's target directory). An EC2 instance names an
S3 bucket (SCCACHE_BUCKET), which sccache reaches through the instance's relay (its
socket, forwarded first: cache_forward.py); its containers keep no target directory,
so every crate goes through sccache there, with cargo's pipelining kept
(sccache_pipelined.py).

``setup`` writes the cargo steps' RUSTC_WRAPPER (a script of wrappers/) and starts
the build's counts afresh. Result: ``{"kind": "crates"|"sccache"|null, "wrapper":
PATH, "compiler": ID, "location": WHERE, "version": SCCACHE_VERSION}`` (kind null:
no cache, and no other field; the cargo steps give the compiler as
RUSTFARM_COMPILER).

``stats`` is the build's counts so far, in one shape for both kinds: ``{"kind",
"location", "read_only", "hits", "misses", "not_cacheable", "errors"}``, and for the
crate cache the crates by name (``from_cache``, ``compiled``) and the cache's
``size``, ``limit`` and ``evicted``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from importlib import resources

from . import crate_cache, crate_cache_upkeep
from .cache_forward import forward
from .protocol import answer, fail, say
from .toolchain import worker_rustc


def compiler_identity(rustc_version: str) -> str:
    """What names this worker's compiler for the crate cache: its version (release,
    commit and date), and the name, size and time of every library of its sysroot
    (rustc's own, the standard library of each target), so that another build of
    the same release is another compiler."""
    digest = hashlib.sha256(rustc_version.encode())
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    lib = os.path.join(sysroot, "lib")
    rustlib = os.path.join(lib, "rustlib")
    places = [lib]
    if os.path.isdir(rustlib):
        places += [os.path.join(rustlib, target, "lib") for target in sorted(os.listdir(rustlib))]
    for place in places:
        if not os.path.isdir(place):
            continue
        for name in sorted(os.listdir(place)):
            path = os.path.join(place, name)
            if os.path.isfile(path):
                info = os.stat(path)
                digest.update(f"{path} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def install_wrapper(name: str, directory: str) -> str:
    """The wrapper script ``name`` (of wrappers/) in ``directory``; its path. One that is
    there already as it is stays untouched: cargo keeps its questions to rustc (its
    version, a target's file names) with the target directory while RUSTC_WRAPPER is
    the same file (path, size and times)."""
    text = resources.files(__package__).joinpath("wrappers", name).read_bytes()
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as script:
            if script.read() == text and os.access(path, os.X_OK):
                return path
    except OSError:
        pass
    os.makedirs(directory, exist_ok=True)
    part = f"{path}.{os.getpid()}"
    with open(part, "wb") as script:
        script.write(text)
    os.chmod(part, 0o755)
    os.replace(part, path)
    return path


def home_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".rustfarm")


def setup_crate_cache(directory: str) -> dict:
    rustc, _, _ = worker_rustc()
    identity = compiler_identity(rustc)
    # Beside the target directory (the project's, which the next build's container
    # mounts again), where the next build finds the wrapper unchanged.
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    place = os.path.join(os.path.dirname(os.path.abspath(target_dir)), ".rustfarm") \
        if target_dir else home_dir()
    wrapper = install_wrapper("rustc-for-dependencies.sh", place)
    # This build's counts start afresh.
    os.makedirs(os.path.dirname(crate_cache.event_log()), exist_ok=True)
    with open(crate_cache.event_log(), "w"):
        pass
    say(f"compile cache: the crate cache in {directory}")
    return {"kind": "crates", "wrapper": wrapper, "compiler": identity, "location": directory}


def setup_sccache(program: str, bucket: str) -> dict:
    relay = os.environ.get("RUSTFARM_CACHE_SOCKET", "")
    port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", os.environ.get("SCCACHE_ENDPOINT", ""))
    if not port or not relay or not os.path.exists(relay):
        say("compile cache relay: none on this instance; building without the cache")
        return {"kind": None}
    forward(relay, int(port.group(1)))
    try:
        version = subprocess.run([program, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError) as err:
        fail(f"sccache does not run: {err}")
    location = f"s3://{bucket}/{os.environ.get('SCCACHE_S3_KEY_PREFIX', '')}"
    say(f"compile cache: sccache {version} on {location}")
    return {"kind": "sccache", "wrapper": install_wrapper("sccache-pipelined.sh", home_dir()),
            "version": version, "location": location}


def setup() -> dict:
    directory = os.environ.get("RUSTFARM_COMPILE_CACHE")
    if directory:
        if not os.path.isdir(directory):
            say(f"compile cache: {directory} is not mounted; building without the cache")
            return {"kind": None}
        return setup_crate_cache(directory)
    program = shutil.which("sccache")
    bucket = os.environ.get("SCCACHE_BUCKET")
    if program and bucket:
        return setup_sccache(program, bucket)
    return {"kind": None}


def sccache_stats(read_only: bool) -> dict:
    """sccache's counts (its server lives as long as the build's container)."""
    done = subprocess.run([shutil.which("sccache") or "sccache", "--show-stats",
                           "--stats-format", "json"], capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"sccache --show-stats failed: {done.stderr.strip()}")
    try:
        found = json.loads(done.stdout)
        stats = found["stats"]
        return {
            "kind": "sccache", "location": found.get("cache_location", ""),
            "read_only": read_only,
            "hits": sum(stats["cache_hits"]["counts"].values()),
            "misses": sum(stats["cache_misses"]["counts"].values()),
            # Calls with no input (cargo's "rustc -vV") are no compilations.
            "not_cacheable": stats["requests_not_cacheable"]
            - stats.get("not_cached", {}).get("missing input", 0)
            + stats["non_cacheable_compilations"],
            # A read-only cache's refused writes are not errors.
            "errors": stats["cache_read_errors"] + (0 if read_only else stats["cache_write_errors"])
            + sum(stats["cache_errors"]["counts"].values())}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        fail(f"sccache's statistics are not what this tool reads: {err!r}")


def stats() -> dict:
    if os.environ.get("RUSTFARM_COMPILE_CACHE"):
        return crate_cache_upkeep.stats()
    return sccache_stats(crate_cache.read_only())


def main(args: list[str]) -> None:
    if args == ["setup"]:
        answer(setup())
    elif args == ["stats"]:
        answer(stats())
    else:
        fail("usage: compile-cache setup|stats")
