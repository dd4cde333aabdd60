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
        Print the worker's Rust version (and its sccache, where the pool gives
        builds a shared compile cache, through a wrapper that keeps cargo's
        pipelining and, on a docker pool, leaves the project's own crates to
        rustc), and fail with a message naming both
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
    compile_cache()
    for need, why, where in needs:
        if need > have:
            shown = os.path.relpath(where, crate_dir) if where else "Cargo.toml"
            wanted = "a newer Rust" if need == (99, 0) else f"Rust {_show(need)} or newer"
            print(f"error: {project} needs {wanted} ({shown}: {why}), but its toolchain is"
                  f" Rust {release}; pin a newer toolchain in farm.yaml"
                  f" (projects.{project}.toolchain)", file=sys.stderr)
            sys.exit(1)


def compile_cache():
    """Say whether builds here share compiled crates through sccache: where the image
    has sccache and the pool mounts a cache (SCCACHE_DIR), or, on an EC2 instance, names
    an S3 bucket and the instance's relay is there (its socket, forwarded here first).
    The wrapper it names for a pool's own cache sends only dependencies through sccache
    (the pool keeps each project's target directory); on EC2, whose containers keep
    none, every crate goes through it. Both keep cargo's pipelining (PIPELINED)."""
    wrapper = shutil.which("sccache")
    if not wrapper:
        return
    bucket = os.environ.get("SCCACHE_BUCKET")
    if bucket:
        relay = os.environ.get("RUSTFARM_CACHE_SOCKET", "")
        port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", os.environ.get("SCCACHE_ENDPOINT", ""))
        if not port or not relay or not os.path.exists(relay):
            print("compile cache relay: none on this instance; building without the cache")
            return
        cache_forward(relay, port.group(1))
        directory = f"s3://{bucket}/{os.environ.get('SCCACHE_S3_KEY_PREFIX', '')}"
    else:
        directory = os.environ.get("SCCACHE_DIR")
        if not directory or not os.path.isdir(directory):
            return
    try:
        version = subprocess.run([wrapper, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return
    wrapper = pipelined(wrapper) if bucket else dependencies_only(wrapper)
    print(f"compile cache: {wrapper} {version} {directory}")


# Cargo's RUSTC_WRAPPER for a pool that keeps each project's target directory: cargo
# sets CARGO_PRIMARY_PACKAGE for the crates it was asked to build (the project's own),
# which that directory rebuilds incrementally; through sccache they would only cost
# its hashing and fill the shared cache with entries no other build reads. Cargo's
# questions to rustc (its version, what a target's files are called), which sccache
# cannot cache, go straight to rustc too: a build that compiles no dependency never
# starts sccache. A library's compile goes through PIPELINED (below), any other
# (build scripts, proc-macros) to sccache itself.
DEPENDENCIES_ONLY = """#!/bin/sh
# rustc through sccache for dependencies only (see farm_worker_tool.py).
if [ -n "${{CARGO_PRIMARY_PACKAGE:-}}" ]; then
    exec "$@"
fi
case " $* " in
    *" - --crate-name ___ "* | *" -vV "*) exec "$@" ;;
    *" --emit=dep-info,metadata,link "*) exec {pipelined} "$@" ;;
esac
exec {sccache} "$@"
"""

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
    found = {}
    words = iter(args)
    for arg in words:
        for flag in ("--emit", "--json", "--crate-name", "--out-dir", "--codegen", "-C"):
            if arg == flag:
                value = next(words, "")
            elif arg.startswith(flag + "="):
                value = arg[len(flag) + 1:]
            elif flag == "-C" and arg.startswith("-C"):
                value = arg[2:]
            else:
                continue
            if flag in ("--codegen", "-C"):
                key, _, value = value.partition("=")
                flag = key
            found[flag] = value
            break
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
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


main(sys.argv[1:])
"""


def _write_script(name, text):
    path = os.path.join(os.path.expanduser("~"), ".rustfarm", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".new", "w") as script:
        script.write(text)
    os.chmod(path + ".new", 0o755)
    os.replace(path + ".new", path)
    return path


def pipelined(sccache):
    """Write the wrapper that keeps cargo's pipelining through ``sccache``; its path."""
    return _write_script("sccache-pipelined", f"#!{sys.executable} -S\n"
                         f"SCCACHE = {sccache!r}\n" + PIPELINED)


def dependencies_only(sccache):
    """Write the wrapper that sends only dependencies through ``sccache``, libraries
    with cargo's pipelining kept; its path. It passes any other command
    (``--show-stats``) to sccache too."""
    return _write_script("sccache-for-dependencies", DEPENDENCIES_ONLY.format(
        sccache=shlex.quote(sccache), pipelined=shlex.quote(pipelined(sccache))))


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
