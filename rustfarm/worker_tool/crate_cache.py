"""The farm's crate cache: the compile cache of a docker pool's dependencies, run by
cargo as ``RUSTC_WRAPPER`` (wrappers/rustc-for-dependencies.sh, which sends it a
library's compile) as ``crate-cache RUSTC ARGS...``.

A library's compile is kept under a key of what rustc is given (the compiler, its
arguments, the crates it links against by content, its working directory, the
environment cargo and rustc read) and, with it, what the compile read (the sources
and environment variables its own dep-info lists, by content), which must be the
same again for the entry to be used. The compile's own dep-info (cargo asks for it)
lists them after the fact, so rustc runs once per crate, and its output reaches
cargo as it is written, so cargo's pipelining is kept. An entry is a directory
renamed into place whole: concurrent builds read only complete entries, and one that
cannot be read or is outdated is a miss, compiled and replaced. A cache error never
fails a build: it compiles without. crate_cache_upkeep.py keeps it to its size.

Its settings come from the cargo step's environment: RUSTFARM_COMPILE_CACHE (the
cache's directory), RUSTFARM_COMPILER (what names the compiler: compile_cache.py),
RUSTFARM_COMPILE_CACHE_SIZE (bytes) and RUSTFARM_COMPILE_CACHE_READ_ONLY. Each call
adds a line to the build's log of events (``event_log``), which ``compile-cache
stats`` counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

from .digests import file_sha256
from .rustc_args import exit_as, flag_values, write_all

# The entries' directory in the cache.
ENTRIES_DIR = "crates-v1"
# What rustc writes for a library in cargo's pipelined compile, by --emit kind.
OUTPUTS = (("metadata", "lib", ".rmeta"), ("link", "lib", ".rlib"), ("dep-info", "", ".d"))
# The key reads cargo's and rustc's variables (cargo sets the package's CARGO_PKG_*,
# OUT_DIR and the like; rustc reads RUSTC_BOOTSTRAP), but not cargo's jobserver nor
# the wrapper's or the farm's own settings (the compiler is a part of the key itself).
NOT_INPUTS = ("CARGO_MAKEFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "RUSTFARM_")


def event_log() -> str:
    """The build's log of cache events: one line "EVENT CRATE" per rustc call."""
    return os.path.join(os.path.expanduser("~"), ".rustfarm", "compile-cache.log")


def entries() -> str:
    return os.path.join(os.environ["RUSTFARM_COMPILE_CACHE"], ENTRIES_DIR)


def read_only() -> bool:
    return bool(os.environ.get("RUSTFARM_COMPILE_CACHE_READ_ONLY"))


def log(event: str, crate: str) -> None:
    try:
        fd = os.open(event_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event} {crate}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def library(args: list[str]):
    """A library compile's outputs and extern crates, from its arguments; None where
    the cache cannot know all it reads and writes (another kind of compile, an argument
    file, native libraries, a target file, an output file)."""
    pairs = flag_values(args, ("--emit", "--crate-type", "--crate-name", "--out-dir",
                               "--extern", "--target", "--codegen", "-C"))
    if pairs is None:
        return None
    found: dict = {"--extern": []}
    for flag, value in pairs:
        if flag is None:
            if value.startswith(("@", "-l", "--print")) or value == "-o":
                return None
        elif flag == "incremental":
            return None
        elif flag == "--extern":
            found["--extern"].append(value.partition("=")[2])
        elif flag in found and flag.startswith("--"):
            return None
        else:
            found[flag] = value
    if (sorted(found.get("--emit", "").split(",")) != ["dep-info", "link", "metadata"]
            or found.get("--crate-type") not in ("lib", "rlib")
            or not found.get("--crate-name") or not found.get("--out-dir")
            or found.get("--target", "").endswith(".json")):
        return None
    stem = found["--crate-name"] + found.get("extra-filename", "")
    outputs = {kind: os.path.join(found["--out-dir"], prefix + stem + suffix)
               for kind, prefix, suffix in OUTPUTS}
    return outputs, [path for path in found["--extern"] if path]


def key_of(rustc: str, args: list[str], externs: list[str]) -> str:
    digest = hashlib.sha256()

    def add(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")

    add("rustfarm crate cache 1", os.environ.get("RUSTFARM_COMPILER", ""), rustc,
        os.getcwd(), str(len(args)), *args)
    for name in sorted(os.environ):
        if (name.startswith(("CARGO", "RUST")) or name == "OUT_DIR") \
                and not name.startswith(NOT_INPUTS):
            add(name, os.environ[name])
    for path in externs:
        add(path, file_sha256(path))
    return digest.hexdigest()


def dep_info(path: str) -> tuple[list[str], dict]:
    """The files and environment variables a compile read, from its dep-info."""
    files, env = [], {}
    with open(path, encoding="utf-8", errors="surrogateescape") as info:
        for line in info.read().splitlines():
            if line.startswith("# env-dep:"):
                name, equals, value = line[len("# env-dep:"):].partition("=")
                env[name] = value if equals else None
            elif line.endswith(":") and not line.startswith("#"):
                files.append(line[:-1].replace("\\ ", " "))
    return files, env


def env_dep_value(name: str) -> str | None:
    """A variable's value as rustc writes it in dep-info; None when it is not set."""
    value = os.environ.get(name)
    return None if value is None else value.replace("\\", "\\\\").replace("\n", "\\n")


def restore(entry: str, outputs: dict) -> bytes | None:
    """The entry's outputs in place and its transcript, if what it read is unchanged."""
    with open(os.path.join(entry, "manifest.json"), encoding="utf-8") as manifest:
        recorded = json.load(manifest)
    for path, digest in recorded["files"].items():
        try:
            if file_sha256(path) != digest:
                return None
        except OSError:
            return None
    if any(env_dep_value(name) != value for name, value in recorded["env"].items()):
        return None
    with open(os.path.join(entry, "stderr"), "rb") as replay:
        transcript = replay.read()
    for kind, path in outputs.items():
        part = f"{path}.rustfarm-{os.getpid()}"
        shutil.copyfile(os.path.join(entry, kind), part)
        os.replace(part, path)
    try:
        os.utime(os.path.join(entry, "manifest.json"))
    except OSError:
        pass
    return transcript


def _put_in_place(work: str, entry: str) -> None:
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    try:
        os.rename(work, entry)
    except OSError:
        # An outdated entry, which this compile replaces, or one a concurrent build has
        # just stored: set it aside whole, then put this one in place (unless another
        # build's took the place first: as good as this one).
        old = f"{work}.old"
        try:
            os.rename(entry, old)
        except OSError:
            pass
        shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(work, entry)
        except OSError:
            pass


def store(entry: str, outputs: dict, transcript: bytes) -> bool:
    files, env = dep_info(outputs["dep-info"])
    manifest = {"files": {path: file_sha256(path) for path in files},
                "env": {name: env_dep_value(name) for name in env}}
    if manifest["env"] != env:
        return False       # the compile saw other values than the key's environment
    work = os.path.join(entries(), "tmp", f"{os.path.basename(entry)}.{os.urandom(8).hex()}")
    os.makedirs(work)
    try:
        for kind, path in outputs.items():
            shutil.copyfile(path, os.path.join(work, kind))
        with open(os.path.join(work, "stderr"), "wb") as replay:
            replay.write(transcript)
        with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as out:
            json.dump(manifest, out)
        _put_in_place(work, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def compile_through(rustc: str, args: list[str]) -> tuple[int, bytes]:
    """rustc's standard error goes on to cargo as rustc writes it (its notice that the
    metadata is written starts the library's dependents), and is kept. Cargo's
    jobserver descriptors stay open for rustc."""
    compiler = subprocess.Popen([rustc, *args], stderr=subprocess.PIPE, close_fds=False)
    kept = []
    while True:
        data = os.read(compiler.stderr.fileno(), 65536)
        if not data:
            break
        write_all(2, data)
        kept.append(data)
    return compiler.wait(), b"".join(kept)


def main(args: list[str]) -> None:
    rustc, args = args[0], args[1:]
    crate = os.environ.get("CARGO_PKG_NAME") or "rustc"
    found = library(args)
    if found is None:
        log("not-cacheable", crate)
        os.execvp(rustc, [rustc, *args])
    outputs, externs = found
    entry = transcript = None
    try:
        key = key_of(rustc, args, externs)
        entry = os.path.join(entries(), key[:2], key)
        if os.path.isdir(entry):
            transcript = restore(entry, outputs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        transcript = None
    if transcript is not None:
        sys.stderr.buffer.write(transcript)
        sys.stderr.flush()
        log("hit", crate)
        return
    code, transcript = compile_through(rustc, args)
    if code != 0:
        exit_as(code)
    if read_only():
        log("compiled", crate)
        return
    if entry is None:
        log("error", crate)
        return
    try:
        stored = store(entry, outputs, transcript)
    except (OSError, ValueError):
        log("error", crate)
        return
    # Not stored where the compile saw other values than the key's environment.
    log("stored" if stored else "compiled", crate)
