"""sccache for an EC2 pool's builds, with cargo's pipelining kept: run by cargo as
``RUSTC_WRAPPER`` (wrappers/sccache-pipelined.sh) as ``sccache-pipelined RUSTC ARGS...``.

sccache hands rustc's output back only once a crate is compiled, so cargo, which
starts a library's dependents as soon as rustc says its metadata (.rmeta) is
written, would start none of them before the library's code generation is done: on
a cold build, the crates of a dependency chain one after another. This wrapper runs
sccache and says it for rustc as the file appears (rustc, and sccache taking a crate
from the cache, both rename a finished file into place), and drops the same notice
from sccache's output. Any other command goes to sccache as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

from .rustc_args import exit_as, flag_values


def sccache() -> str:
    return shutil.which("sccache") or "sccache"


def metadata_file(args: list[str]) -> str | None:
    """Where rustc writes the library's .rmeta in a pipelined compile (cargo asks for
    metadata and link, and for notices of artifacts); None for any other command."""
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


def state(path: str):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def is_metadata_notice(line: bytes) -> bool:
    if b'"artifact"' not in line:
        return False
    try:
        notice = json.loads(line)
    except ValueError:
        return False
    # Rust 1.63's notices have no "$message_type".
    return (isinstance(notice, dict) and notice.get("$message_type", "artifact") == "artifact"
            and str(notice.get("artifact", "")).endswith(".rmeta"))


def main(args: list[str]) -> None:
    program = sccache()
    rmeta = metadata_file(args[1:])
    if rmeta is None:
        os.execv(program, [program, *args])
    before = state(rmeta)
    compile = subprocess.Popen([program, *args], stderr=subprocess.PIPE)
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
