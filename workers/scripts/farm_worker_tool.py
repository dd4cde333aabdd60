"""rustfarm's helper on workers. The target images carry it (and their workers
say so, with its digest, in their worker info); to a worker without this very
version the master sends it on each command's standard input (``python3 -
unpack ...``).

    python3 farm_worker_tool.py unpack SNAPSHOT.tar.gz|- DEST
        Unpack a source snapshot, touching only files whose content changed:
        unchanged files keep their modification time, so cargo recompiles only
        the crates that changed; files the snapshot no longer has are removed.
        With -, the snapshot comes base64-encoded on standard input.

    python3 farm_worker_tool.py package ARCHIVE BINDIR BINARY...
        Pack built binaries into a reproducible .tar.gz (sorted names, zero
        timestamps and owners), and print its SHA-256 digest (the master
        checks the upload against it and writes the SHA256SUMS file).

    python3 farm_worker_tool.py package ARCHIVE BINDIR --bins-of CRATE_DIR SUFFIX
        The same for every binary the crate in CRATE_DIR declares (an uploaded
        project, whose binaries farm.yaml does not list), SUFFIX (".exe",
        ".wasm" or "-") after each name.

    python3 farm_worker_tool.py toolchain CRATE_DIR PROJECT PINNED|-
        Print the worker's Rust version (and its compile cache, where the pool
        gives builds a shared one: this tool's crate cache for dependencies on a
        docker pool, sccache on an EC2 pool's S3 bucket, each through a wrapper
        that keeps cargo's pipelining), and fail with a message naming both
        when the crate needs a newer Rust (its rust-version or edition) or the
        worker's Rust is not the toolchain farm.yaml pins for the project.

    python3 farm_worker_tool.py cache-forward SOCKET PORT
        Forward 127.0.0.1:PORT to the Unix socket SOCKET, in the background for
        as long as the container lives: the way sccache, in a container with
        no network, reaches the compile cache relay of an EC2 instance
        (ami/rustfarm-cache-relay). Returns once it listens; a second call
        finds the port taken and leaves the first forwarder be.

Only the standard library: it runs on whatever Python the worker has.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import threading

# The first Rust release of each edition.
EDITION_RUST = {"2015": (1, 0), "2018": (1, 31), "2021": (1, 56), "2024": (1, 85)}


def unpack(archive, dest):
    os.makedirs(dest, exist_ok=True)
    wanted = set()
    changed = 0
    source = ({"fileobj": io.BytesIO(base64.b64decode(sys.stdin.buffer.read()))}
              if archive == "-" else {"name": archive})
    with tarfile.open(mode="r:gz", **source) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("..", "/")) or name == ".":
                continue
            path = os.path.join(dest, name)
            wanted.add(name)
            parent = os.path.dirname(name)
            while parent:
                wanted.add(parent)
                parent = os.path.dirname(parent)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
                continue
            if not member.isfile():
                continue
            data = tar.extractfile(member).read()
            try:
                with open(path, "rb") as existing:
                    if existing.read() == data:
                        continue
            except OSError:
                pass
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(data)
            os.chmod(path, 0o755 if member.mode & 0o111 else 0o644)
            changed += 1
    removed = 0
    for root, dirs, files in os.walk(dest, topdown=False):
        for entry in files + dirs:
            path = os.path.join(root, entry)
            if os.path.relpath(path, dest) not in wanted:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                removed += 1
    print(f"unpacked {len(wanted)} entries: {changed} written, {removed} removed")


def package(archive, bindir, binaries):
    missing = [b for b in binaries if not os.path.isfile(os.path.join(bindir, b))]
    if missing:
        present = sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []
        print(f"error: binary {', '.join(missing)} not found in {bindir}", file=sys.stderr)
        print(f"  files there: {', '.join(present) or 'none'}", file=sys.stderr)
        print("  (check `binaries` in farm.yaml against the [[bin]] names in Cargo.toml)",
              file=sys.stderr)
        sys.exit(1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for binary in sorted(binaries):
            info = tar.gettarinfo(os.path.join(bindir, binary), arcname=binary)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755
            with open(os.path.join(bindir, binary), "rb") as handle:
                tar.addfile(info, handle)
    # gzip's own default level: half level 9's time on a binary, 0.2 % larger.
    with open(archive, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                           compresslevel=6) as gz:
            gz.write(buffer.getvalue())
    with open(archive, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    for binary in sorted(binaries):
        size = os.path.getsize(os.path.join(bindir, binary))
        print(f"packed {binary} ({size} bytes)")
    print(f"{digest}  {os.path.basename(archive)}")


def _version(text):
    """(major, minor) of "1.85" or "1.85.1", or None."""
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _show(version):
    return ".".join(str(part) for part in version)


def _manifest_value(crate_dir, table, key):
    """``[table] key`` of the crate's Cargo.toml, following ``key.workspace = true``
    to the workspace's ``[workspace.package]`` above it. (value, file) or (None, None)."""
    import tomllib

    path = os.path.join(crate_dir, "Cargo.toml")
    try:
        with open(path, "rb") as handle:
            manifest = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None, None
    value = manifest.get(table, {}).get(key)
    if isinstance(value, dict) and value.get("workspace") is True:
        directory = crate_dir
        while True:
            candidate = os.path.join(directory, "Cargo.toml")
            try:
                with open(candidate, "rb") as handle:
                    root = tomllib.load(handle)
            except (OSError, tomllib.TOMLDecodeError):
                root = {}
            shared = root.get("workspace", {}).get("package", {}).get(key)
            if shared is not None:
                return shared, candidate
            parent = os.path.dirname(directory)
            if parent == directory:
                return None, None
            directory = parent
    return value, path


def toolchain(crate_dir, project, pinned):
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: no working rustc on this worker: {exc}", file=sys.stderr)
        sys.exit(1)
    print(rustc)
    have = _version(rustc.split()[1]) if len(rustc.split()) > 1 else None
    if have is None:
        print(f"error: cannot read a version from {rustc!r}", file=sys.stderr)
        sys.exit(1)
    release = re.match(r"^\d+\.\d+\.\d+", rustc.split()[1]).group(0)
    if pinned != "-" and _version(pinned) != have:
        print(f"error: farm.yaml pins toolchain {pinned} for {project}, but this worker has"
              f" Rust {release}", file=sys.stderr)
        print(f"toolchain: {release}")
        sys.exit(1)
    needs = []
    rust_version, where = _manifest_value(crate_dir, "package", "rust-version")
    if rust_version is not None and _version(rust_version):
        needs.append((_version(rust_version), f"rust-version = \"{rust_version}\"", where))
    edition, where = _manifest_value(crate_dir, "package", "edition")
    if str(edition) in EDITION_RUST:
        needs.append((EDITION_RUST[str(edition)], f"edition = \"{edition}\"", where))
    elif edition is not None:
        needs.append(((99, 0), f"edition = \"{edition}\"", where))
    print(f"toolchain: {release}")
    compile_cache(rustc)
    for need, why, where in needs:
        if need > have:
            shown = os.path.relpath(where, crate_dir) if where else "Cargo.toml"
            wanted = "a newer Rust" if need == (99, 0) else f"Rust {_show(need)} or newer"
            print(f"error: {project} needs {wanted} ({shown}: {why}), but its toolchain is"
                  f" Rust {release}; pin a newer toolchain in farm.yaml"
                  f" (projects.{project}.toolchain)", file=sys.stderr)
            sys.exit(1)


def compile_cache(rustc_version):
    """Say whether builds here share compiled crates, and write the RUSTC_WRAPPER that
    does it. A docker pool mounts its (toolchain, target) cache at
    RUSTFARM_COMPILE_CACHE: the farm's crate cache (CRATE_CACHE, below) takes the
    dependencies, rustc the project's own crates (the pool keeps each project's target
    directory). An EC2 instance names an S3 bucket, which sccache reaches through the
    instance's relay (its socket, forwarded here first); its containers keep no target
    directory, so every crate goes through sccache there, with cargo's pipelining kept
    (PIPELINED)."""
    directory = os.environ.get("RUSTFARM_COMPILE_CACHE")
    if directory:
        if not os.path.isdir(directory):
            return
        try:
            identity = compiler_identity(rustc_version)
        except (OSError, subprocess.CalledProcessError):
            return
        print(f"compile cache: {dependencies_only(directory, identity)} crates {directory}")
        return
    sccache = shutil.which("sccache")
    bucket = os.environ.get("SCCACHE_BUCKET")
    if not sccache or not bucket:
        return
    relay = os.environ.get("RUSTFARM_CACHE_SOCKET", "")
    port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", os.environ.get("SCCACHE_ENDPOINT", ""))
    if not port or not relay or not os.path.exists(relay):
        print("compile cache relay: none on this instance; building without the cache")
        return
    cache_forward(relay, port.group(1))
    try:
        version = subprocess.run([sccache, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return
    prefix = os.environ.get("SCCACHE_S3_KEY_PREFIX", "")
    print(f"compile cache: {pipelined(sccache)} sccache-{version} s3://{bucket}/{prefix}")


def compiler_identity(rustc_version):
    """What names this worker's compiler for the crate cache: its version (what
    ``rustc --version`` says: release, commit and date), and the name, size and time of
    every library of its sysroot (rustc's own, the standard library of each target),
    so that another build of the same release is another compiler."""
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


# What the wrappers below share (written ahead of each): reading rustc's arguments,
# and ending as rustc ended.
WRAPPER_PRELUDE = r'''
# rustc's arguments as (flag, value) pairs, for the flags asked for in either form
# ("--emit=x" or "--emit x"; a codegen setting "-Cname=value" or "-C name=value" as
# ("name", "value")), and (None, argument) for any other; None when a value is missing.
def flag_values(args, flags):
    pairs = []
    words = iter(args)
    for arg in words:
        for flag in flags:
            if arg == flag:
                value = next(words, None)
                if value is None:
                    return None
            elif arg.startswith(flag + "="):
                value = arg[len(flag) + 1:]
            elif flag == "-C" and arg.startswith("-C"):
                value = arg[2:]
            else:
                continue
            if flag in ("-C", "--codegen"):
                flag, _, value = value.partition("=")
            pairs.append((flag, value))
            break
        else:
            pairs.append((None, arg))
    return pairs


# Exit with rustc's status, or die of the signal that killed it.
def exit_as(code):
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
'''


# Cargo's RUSTC_WRAPPER for a docker pool, which keeps each project's target
# directory: cargo sets CARGO_PRIMARY_PACKAGE for the crates it was asked to build
# (the project's own), which that directory rebuilds incrementally; through the cache
# they would only fill it with entries no other build reads. Cargo's questions to
# rustc (its version, what a target's files are called) go straight to rustc too. A
# library's compile goes through the crate cache; any other (build scripts and
# proc-macros, programs the cache does not keep) to rustc, counted.
DEPENDENCIES_ONLY = """#!/bin/sh
# rustc through the farm's crate cache for dependencies only (see farm_worker_tool.py).
if [ -n "${{CARGO_PRIMARY_PACKAGE:-}}" ]; then
    exec "$@"
fi
case " $* " in
    " --show-stats "*) exec {cache} --show-stats ;;
    *" - --crate-name ___ "* | *" -vV "*) exec "$@" ;;
    *" --emit=dep-info,metadata,link "*) exec {cache} "$@" ;;
esac
echo "not-cacheable ${{CARGO_PKG_NAME:-rustc}}" >>{log}
exec "$@"
"""

# The farm's crate cache: a library's compile, kept under a key of what rustc is
# given (the compiler, its arguments, the crates it links against by content, its
# working directory, the environment cargo and rustc read) and, with it, what the
# compile read (the sources and environment variables its own dep-info lists, by
# content), which must be the same again for the entry to be used. sccache instead
# runs rustc once more before each compile to list the sources, which costs a cold
# build 7-16% here; the compile's own dep-info (cargo asks for it) lists them after
# the fact, and rustc's output reaches cargo as it is written, so cargo's pipelining
# is kept. An entry is a directory renamed into place whole: concurrent builds read
# only complete entries, and one that cannot be read or is outdated is a miss,
# compiled and replaced. A cache error never fails a build: it compiles without.
CRATE_CACHE = r'''
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ENTRIES = os.path.join(CACHE, "crates-v1")
# What the last walk of the cache found, and how often the cache is walked (seconds);
# after how long a work directory in tmp is abandoned.
SCANNED = os.path.join(ENTRIES, "scanned.json")
SCAN_EVERY = 300
ABANDONED_AFTER = 3600
# What rustc writes for a library in cargo's pipelined compile, by --emit kind.
OUTPUTS = (("metadata", "lib", ".rmeta"), ("link", "lib", ".rlib"), ("dep-info", "", ".d"))
# The key reads cargo's and rustc's variables (cargo sets the package's CARGO_PKG_*,
# OUT_DIR and the like; rustc reads RUSTC_BOOTSTRAP), but not cargo's jobserver nor
# the wrapper's or the cache's own settings.
NOT_INPUTS = ("CARGO_MAKEFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER",
              "RUSTFARM_COMPILE_CACHE")


def log(event, crate):
    try:
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event} {crate}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library(args):
    # A library compile's crate name, outputs and extern crates, from its arguments;
    # None where the cache cannot know all it reads and writes (another kind of
    # compile, an argument file, native libraries, a target file, an output file).
    pairs = flag_values(args, ("--emit", "--crate-type", "--crate-name", "--out-dir",
                                "--extern", "--target", "--codegen", "-C"))
    if pairs is None:
        return None
    found = {"--extern": []}
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


def key_of(rustc, args, externs):
    digest = hashlib.sha256()

    def add(*parts):
        for part in parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")

    add("rustfarm crate cache 1", COMPILER, rustc, os.getcwd(), str(len(args)), *args)
    for name in sorted(os.environ):
        if (name.startswith(("CARGO", "RUST")) or name == "OUT_DIR") \
                and not name.startswith(NOT_INPUTS):
            add(name, os.environ[name])
    for path in externs:
        add(path, file_digest(path))
    return digest.hexdigest()


def dep_info(path):
    # The files and environment variables a compile read, from its dep-info.
    files, env = [], {}
    with open(path, encoding="utf-8", errors="surrogateescape") as info:
        for line in info.read().splitlines():
            if line.startswith("# env-dep:"):
                name, equals, value = line[len("# env-dep:"):].partition("=")
                env[name] = value if equals else None
            elif line.endswith(":") and not line.startswith("#"):
                files.append(line[:-1].replace("\\ ", " "))
    return files, env


def env_dep_value(name):
    # A variable's value as rustc writes it in dep-info; None when it is not set.
    value = os.environ.get(name)
    return None if value is None else value.replace("\\", "\\\\").replace("\n", "\\n")


def restore(entry, outputs):
    # The entry's outputs in place and its transcript, if what it read is unchanged.
    with open(os.path.join(entry, "manifest.json"), encoding="utf-8") as manifest:
        recorded = json.load(manifest)
    for path, digest in recorded["files"].items():
        try:
            if file_digest(path) != digest:
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


def store(entry, outputs, transcript):
    files, env = dep_info(outputs["dep-info"])
    manifest = {"files": {path: file_digest(path) for path in files},
                "env": {name: env_dep_value(name) for name in env}}
    if manifest["env"] != env:
        return False       # the compile saw other values than the key's environment
    work = os.path.join(ENTRIES, "tmp", f"{os.path.basename(entry)}.{os.urandom(8).hex()}")
    os.makedirs(work)
    try:
        for kind, path in outputs.items():
            shutil.copyfile(path, os.path.join(work, kind))
        with open(os.path.join(work, "stderr"), "wb") as replay:
            replay.write(transcript)
        with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as out:
            json.dump(manifest, out)
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        try:
            os.rename(work, entry)
        except OSError:
            # An outdated entry, which this compile replaces, or one a concurrent
            # build has just stored: set it aside whole, then put this one in place
            # (unless another build's took the place first: as good as this one).
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def compile_through(rustc, args):
    # rustc's standard error goes on to cargo as rustc writes it (its notice that
    # the metadata is written starts the library's dependents), and is kept.
    # Cargo's jobserver descriptors stay open for rustc.
    compiler = subprocess.Popen([rustc, *args], stderr=subprocess.PIPE, close_fds=False)
    kept = []
    while True:
        data = os.read(compiler.stderr.fileno(), 65536)
        if not data:
            break
        write_all(2, data)
        kept.append(data)
    return compiler.wait(), b"".join(kept)


def evict():
    # The least recently used entries go while the cache is over 90% of its size.
    # Work directories abandoned in tmp (a container stopped mid-store) go too.
    entries, total = [], 0
    for shard in os.listdir(ENTRIES):
        place = os.path.join(ENTRIES, shard)
        if shard == "tmp" or not os.path.isdir(place):
            continue
        for key in os.listdir(place):
            entry = os.path.join(place, key)
            try:
                size = sum(os.stat(os.path.join(entry, name)).st_size
                           for name in os.listdir(entry))
                used = os.stat(os.path.join(entry, "manifest.json")).st_mtime
            except OSError:
                continue
            entries.append((used, size, entry))
            total += size
    tmp = os.path.join(ENTRIES, "tmp")
    for name in os.listdir(tmp) if os.path.isdir(tmp) else ():
        work = os.path.join(tmp, name)
        try:
            abandoned = time.time() - os.stat(work).st_mtime > ABANDONED_AFTER
        except OSError:
            continue
        if abandoned:
            shutil.rmtree(work, ignore_errors=True)
    # In bytes, as the master gives it (farm.yaml's compile_cache).
    limit = cache_limit()
    evicted = 0
    if total > limit:
        os.makedirs(tmp, exist_ok=True)
        for used, size, entry in sorted(entries):
            if total <= limit * 0.9:
                break
            gone = os.path.join(tmp, f"evicted.{os.urandom(8).hex()}")
            try:
                os.rename(entry, gone)
            except OSError:
                continue
            shutil.rmtree(gone, ignore_errors=True)
            total -= size
            evicted += 1
    return total, limit, evicted


def cache_limit():
    return int(os.environ.get("RUSTFARM_COMPILE_CACHE_SIZE", 10 << 30))


def keep_to_size():
    # evict(), which stats every entry (0.5 s for 20,000 of them), at most once per
    # SCAN_EVERY seconds for all the builds that share the cache: in between, the
    # size its last walk found (in SCANNED, whose time is the walk's), unless the
    # limit is smaller now or that walk left the cache over it. Builds in the meantime
    # add what they compile, for which the 10% evict() frees below the limit is room.
    try:
        with open(SCANNED, encoding="utf-8") as last:
            found = json.load(last)
        if time.time() - os.stat(SCANNED).st_mtime < SCAN_EVERY \
                and found["limit"] <= cache_limit() and found["size"] <= found["limit"]:
            return found["size"], cache_limit(), 0
    except (OSError, ValueError, KeyError, TypeError):
        pass
    size, limit, evicted = evict()
    part = f"{SCANNED}.{os.getpid()}"
    with open(part, "w", encoding="utf-8") as out:
        json.dump({"size": size, "limit": limit}, out)
    os.replace(part, SCANNED)
    return size, limit, evicted


def show_stats():
    read_only = bool(os.environ.get("RUSTFARM_COMPILE_CACHE_READ_ONLY"))
    events = {}
    try:
        with open(LOG, encoding="utf-8") as lines:
            for line in lines:
                event, _, crate = line.strip().partition(" ")
                events.setdefault(event, []).append(crate)
    except OSError:
        pass
    compiled = events.get("stored", []) + events.get("compiled", [])
    stats = {"crate_cache": CACHE, "read_only": read_only,
             "hits": len(events.get("hit", [])), "misses": len(compiled),
             "not_cacheable": len(events.get("not-cacheable", [])),
             "errors": len(events.get("error", [])),
             "from_cache": sorted(events.get("hit", [])), "compiled": sorted(compiled)}
    if not read_only and os.path.isdir(ENTRIES):
        try:
            stats["size"], stats["limit"], stats["evicted"] = keep_to_size()
        except (OSError, ValueError):
            pass
    print(json.dumps(stats))


def main(args):
    if args[:1] == ["--show-stats"]:
        show_stats()
        return
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
        entry = os.path.join(ENTRIES, key[:2], key)
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
    if os.environ.get("RUSTFARM_COMPILE_CACHE_READ_ONLY"):
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


main(sys.argv[1:])
'''


# sccache hands rustc's output back only once a crate is compiled, so cargo, which
# starts a library's dependents as soon as rustc says its metadata (.rmeta) is
# written, would start none of them before the library's code generation is done:
# on a cold build, the crates of a dependency chain one after another. This wrapper
# runs sccache and says it for rustc, as the file appears (rustc, and sccache taking
# a crate from the cache, both rename a finished file into place), and drops the
# same notice from sccache's output. Any other command goes to sccache as it is.
PIPELINED = r"""
import json
import os
import signal
import subprocess
import sys
import threading
import time


# Where rustc writes the library's .rmeta in a pipelined compile (cargo asks for
# metadata and link, and for notices of artifacts); None for any other command.
def metadata_file(args):
    pairs = flag_values(args, ("--emit", "--json", "--crate-name", "--out-dir", "--codegen",
                               "-C"))
    found = {flag: value for flag, value in pairs or () if flag}
    emit = found.get("--emit", "").split(",")
    if not ("metadata" in emit and "link" in emit
            and "artifacts" in found.get("--json", "").split(",")
            and found.get("--crate-name") and found.get("--out-dir")):
        return None
    name = f"lib{found['--crate-name']}{found.get('extra-filename', '')}.rmeta"
    return os.path.join(found["--out-dir"], name)


def state(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def is_metadata_notice(line):
    if b'"artifact"' not in line:
        return False
    try:
        notice = json.loads(line)
    except ValueError:
        return False
    # Rust 1.63's notices have no "$message_type".
    return (isinstance(notice, dict) and notice.get("$message_type", "artifact") == "artifact"
            and str(notice.get("artifact", "")).endswith(".rmeta"))


def main(args):
    rmeta = metadata_file(args[1:])
    if rmeta is None:
        os.execv(SCCACHE, [SCCACHE, *args])
    before = state(rmeta)
    compile = subprocess.Popen([SCCACHE, *args], stderr=subprocess.PIPE)
    output = []
    reader = threading.Thread(target=lambda: output.append(compile.stderr.read()))
    reader.start()
    announced = False
    while compile.poll() is None:
        now = state(rmeta)
        if now is not None and now != before:
            notice = {"$message_type": "artifact", "artifact": rmeta, "emit": "metadata"}
            os.write(2, (json.dumps(notice, separators=(",", ":")) + "\n").encode())
            announced = True
            break
        time.sleep(0.005)
    code = compile.wait()
    reader.join()
    replay = output[0] if output else b""
    if announced:
        replay = b"".join(line for line in replay.splitlines(keepends=True)
                          if not is_metadata_notice(line))
    sys.stderr.buffer.write(replay)
    sys.stderr.flush()
    exit_as(code)


main(sys.argv[1:])
"""


def _write_script(name, text, directory=None):
    """Write a script to ``directory`` (~/.rustfarm by default); its path. A script
    that is there already as it is stays untouched: cargo keeps its questions to rustc
    (its version, a target's file names) with the target directory while
    RUSTC_WRAPPER is the same file (path, size and times)."""
    path = os.path.join(directory or os.path.join(os.path.expanduser("~"), ".rustfarm"), name)
    try:
        with open(path) as script:
            if script.read() == text and os.access(path, os.X_OK):
                return path
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = f"{path}.{os.getpid()}"
    with open(part, "w") as script:
        script.write(text)
    os.chmod(part, 0o755)
    os.replace(part, path)
    return path


def pipelined(sccache):
    """Write the wrapper that keeps cargo's pipelining through ``sccache``; its path."""
    return _write_script("sccache-pipelined", f"#!{sys.executable} -S\n"
                         f"SCCACHE = {sccache!r}\n" + WRAPPER_PRELUDE + PIPELINED)


def dependencies_only(directory, identity):
    """Write the wrapper that sends dependencies through the crate cache in
    ``directory``, for the compiler ``identity`` names; its path. The wrappers go
    beside the target directory (the project's, which the next build's container
    mounts again), where the next build finds them unchanged. This build's counts
    start afresh; ``--show-stats`` prints them (and keeps the cache to its size)."""
    home = os.path.join(os.path.expanduser("~"), ".rustfarm")
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    place = os.path.join(os.path.dirname(os.path.abspath(target_dir)), ".rustfarm") \
        if target_dir else home
    log = os.path.join(home, "compile-cache.log")
    cache = _write_script("crate-cache", f"#!{sys.executable} -S\n"
                          f"CACHE = {directory!r}\nCOMPILER = {identity!r}\nLOG = {log!r}\n"
                          + WRAPPER_PRELUDE + CRATE_CACHE, place)
    os.makedirs(home, exist_ok=True)
    with open(log, "w"):
        pass
    return _write_script("rustc-for-dependencies", DEPENDENCIES_ONLY.format(
        cache=shlex.quote(cache), log=shlex.quote(log)), place)


def crate_binaries(crate_dir, suffix):
    """The names of the binaries the crate declares, from `cargo metadata`."""
    import json
    done = subprocess.run(["cargo", "metadata", "--no-deps", "--offline", "--format-version",
                           "1"], cwd=crate_dir, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"error: cargo metadata failed: {done.stderr.strip()}", file=sys.stderr)
        sys.exit(1)
    manifest = os.path.realpath(os.path.join(crate_dir, "Cargo.toml"))
    names = [target["name"] + ("" if suffix == "-" else suffix)
             for package in json.loads(done.stdout)["packages"]
             if os.path.realpath(package["manifest_path"]) == manifest
             for target in package["targets"] if "bin" in target["kind"]]
    if not names:
        print("error: the crate declares no binary (a library cannot be compiled alone)",
              file=sys.stderr)
        sys.exit(1)
    return names


def _pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _forward(connection, socket_path):
    with connection, socket.socket(socket.AF_UNIX) as relay:
        try:
            relay.connect(socket_path)
        except OSError:
            return
        back = threading.Thread(target=_pipe, args=(relay, connection), daemon=True)
        back.start()
        _pipe(connection, relay)
        back.join()


def cache_forward(socket_path, port):
    if not os.path.exists(socket_path):
        print(f"error: no compile cache relay at {socket_path}", file=sys.stderr)
        sys.exit(1)
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", int(port)))
    except OSError:
        print(f"compile cache relay: already forwarded on 127.0.0.1:{port}")
        return
    listener.listen(64)
    sys.stdout.flush()
    if os.fork():
        print(f"compile cache relay: 127.0.0.1:{port} -> {socket_path}")
        return
    # The forwarder: out of the step's session and output, so the step ends now.
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_forward, args=(connection, socket_path), daemon=True).start()


def main(argv):
    if len(argv) >= 3 and argv[0] == "unpack":
        unpack(argv[1], argv[2])
    elif len(argv) == 6 and argv[0] == "package" and argv[3] == "--bins-of":
        package(argv[1], argv[2], crate_binaries(argv[4], argv[5]))
    elif len(argv) >= 3 and argv[0] == "package":
        package(argv[1], argv[2], argv[3:])
    elif len(argv) == 4 and argv[0] == "toolchain":
        toolchain(argv[1], argv[2], argv[3])
    elif len(argv) == 3 and argv[0] == "cache-forward":
        cache_forward(argv[1], argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
