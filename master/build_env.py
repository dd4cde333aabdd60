"""The environment of a build's cargo steps: the shared compile cache's settings (a
docker pool's crate cache, an ec2 pool's sccache on S3), read-only for anyone's code,
and what makes the binaries the same wherever they are built."""

from __future__ import annotations

from buildbot.process.properties import Interpolate, Property, renderer

from rustfarm.farmfile import Target
from rustfarm.farmfile.pool_kinds import S3CompileCache
from rustfarm.farmfile.pools import size_bytes
from rustfarm.names import is_untrusted
from rustfarm.targets import cargo_target_variable, target_table
from rustfarm.workers.docker_volumes import COMPILE_CACHE_DIR, CRATE_COPIES, CRATE_STORE_DIR

# The crate cache's setting for a cache a build may read but not add to (an upload's:
# its volume is mounted read-only too, which is what keeps it out).
READ_ONLY_COMPILE_CACHE = {"RUSTFARM_COMPILE_CACHE_READ_ONLY": "1"}


@renderer
def _read_only_if_untrusted(props) -> str:
    """A project's build reads the cache only when it is a pull request's."""
    return "1" if is_untrusted(props) else ""


def _cache_mode(read_only: bool) -> dict:
    return READ_ONLY_COMPILE_CACHE if read_only else {
        "RUSTFARM_COMPILE_CACHE_READ_ONLY": _read_only_if_untrusted}


# What the cargo steps' RUSTC_WRAPPER runs: the wrapper the compile cache step wrote
# (none where the worker has no cache), the worker tool and the compiler it names.
WRAPPER_ENV = {"RUSTC_WRAPPER": Property("rustc_wrapper", default=""),
               "RUSTFARM_TOOL": Property("worker_tool", default=""),
               "RUSTFARM_COMPILER": Property("compiler_identity", default="")}


def compile_cache_env(size: str, read_only: bool) -> dict:
    """The worker tool's crate cache for the cargo steps, on the pool's shared cache;
    its counts are the build's (a container per build)."""
    env = {**WRAPPER_ENV,
           "RUSTFARM_COMPILE_CACHE": COMPILE_CACHE_DIR,
           "RUSTFARM_COMPILE_CACHE_SIZE": str(size_bytes(size)),
           **_cache_mode(read_only)}
    return env


# The port on a build container's loopback where the worker tool forwards sccache's S3
# requests to the instance's cache relay (the container has no other network).
CACHE_RELAY_PORT = 4227


def s3_compile_cache_env(cache: S3CompileCache, read_only: bool) -> dict:
    """sccache for the cargo steps of an ec2 pool, on S3 through the instance's relay:
    unsigned requests to the loopback, which the relay signs (no credential in the
    build); an upload's instance relays reads only."""
    env = {**WRAPPER_ENV,
           "SCCACHE_BUCKET": cache.bucket, "SCCACHE_S3_KEY_PREFIX": cache.prefix,
           "SCCACHE_REGION": cache.region, "SCCACHE_S3_NO_CREDENTIALS": "true",
           "SCCACHE_ENDPOINT": f"http://127.0.0.1:{CACHE_RELAY_PORT}",
           "SCCACHE_S3_USE_SSL": "false", "SCCACHE_IDLE_TIMEOUT": "0",
           **_cache_mode(read_only)}
    return env


def reproducible_env(target: Target, base: str, docker: bool) -> dict:
    """What makes a build's binaries the same wherever it ran: the commit's time as
    SOURCE_DATE_EPOCH, and the build's paths (its source, target directory and crates,
    which differ between workers) remapped to fixed ones in what rustc writes (panic
    messages, debug info). The target's own rustflags come first: this variable
    replaces the image's."""
    variable = cargo_target_variable(target.triple, "RUSTFLAGS")
    spec = target_table().targets.get(target.triple)
    flags = target.cargo_env().get(variable) or " ".join(spec.rustflags if spec else ())
    places = [(f"{base}/src", "/rustfarm/src"), (f"{base}/target", "/rustfarm/target"),
              (f"{base}/.rustfarm/crates", "/rustfarm/crates"),
              # A worker's own copies of the store's entries, keyed as the store is.
              (f"{base}/{CRATE_COPIES}", "/rustfarm/crates")]
    if docker:
        places.append((CRATE_STORE_DIR, "/rustfarm/crates"))
    remaps = " ".join(f"--remap-path-prefix={path}={fixed}" for path, fixed in places)
    return {variable: Interpolate(f"{flags} {remaps}".strip()),
            "SOURCE_DATE_EPOCH": Interpolate("%(prop:commit_time:-0)s")}
