"""The worker tool: unpacking sources and packing binaries, run in place or sent on
standard input."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "workers" / "scripts" / "farm_worker_tool.py"


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def snapshot(path: Path, files: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))


def test_unpack_keeps_unchanged_files_untouched_and_removes_stale_ones(tmp_path):
    snapshot(tmp_path / "one.tar.gz", {"src/a.rs": "a", "src/b.rs": "b", "old.rs": "x"})
    assert run("unpack", "one.tar.gz", "src", cwd=tmp_path).returncode == 0
    past = time.time() - 3600
    for name in ("src/a.rs", "src/b.rs"):
        os.utime(tmp_path / "src" / name, (past, past))
    snapshot(tmp_path / "two.tar.gz", {"src/a.rs": "a", "src/b.rs": "changed"})
    done = run("unpack", "two.tar.gz", "src", cwd=tmp_path)
    assert done.returncode == 0 and "1 written, 1 removed" in done.stdout
    assert (tmp_path / "src/src/a.rs").stat().st_mtime == past
    assert (tmp_path / "src/src/b.rs").stat().st_mtime > past
    assert (tmp_path / "src/src/b.rs").read_text() == "changed"
    assert not (tmp_path / "src/old.rs").exists()


def test_package_is_reproducible_with_a_checksum(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hello").write_bytes(b"\x7fELF fake")
    first = run("package", "out.tar.gz", bindir, "hello", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    digest = hashlib.sha256((tmp_path / "out.tar.gz").read_bytes()).hexdigest()
    # The digest line the master checks the upload against; no file is left for it.
    assert first.stdout.splitlines()[-1] == f"{digest}  out.tar.gz"
    assert not (tmp_path / "SHA256SUMS").exists()
    os.utime(bindir / "hello", (0, 12345))
    run("package", "out.tar.gz", bindir, "hello", cwd=tmp_path)
    assert hashlib.sha256((tmp_path / "out.tar.gz").read_bytes()).hexdigest() == digest
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        [member] = tar.getmembers()
        assert (member.name, member.mode, member.mtime) == ("hello", 0o755, 0)


def test_package_names_a_missing_binary(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "other").write_text("x")
    done = run("package", "out.tar.gz", tmp_path / "bin", "hello", cwd=tmp_path)
    assert done.returncode == 1
    assert "binary hello not found" in done.stderr and "other" in done.stderr


def test_the_tool_runs_from_standard_input_as_the_master_sends_it(tmp_path):
    snapshot(tmp_path / "s.tar.gz", {"src/main.rs": "fn main() {}"})
    done = subprocess.run([sys.executable, "-", "unpack", "s.tar.gz", "src"], cwd=tmp_path,
                          input=TOOL.read_text(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 written, 0 removed" in done.stdout
    assert (tmp_path / "src/src/main.rs").read_text() == "fn main() {}"


def test_a_snapshot_comes_base64_encoded_on_standard_input_with_the_tool_in_place(tmp_path):
    snapshot(tmp_path / "s.tar.gz", {"src/main.rs": "fn main() {}", "Cargo.toml": "[package]"})
    done = subprocess.run([sys.executable, str(TOOL), "unpack", "-", "src"], cwd=tmp_path,
                          input=base64.b64encode((tmp_path / "s.tar.gz").read_bytes()),
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"2 written, 0 removed" in done.stdout
    assert (tmp_path / "src/src/main.rs").read_text() == "fn main() {}"
    assert not (tmp_path / "-").exists()


def write_pipelined(home: Path, compiler: Path) -> Path:
    """The tool's sccache wrapper that keeps cargo's pipelining, written as the
    toolchain step writes it (under ``home``), around ``compiler`` instead of sccache."""
    done = subprocess.run([sys.executable, "-c", "import runpy; tool = runpy.run_path("
                           f"{str(TOOL)!r}, run_name='tool'); "
                           f"print(tool['pipelined']({str(compiler)!r}))"],
                          env={**os.environ, "HOME": str(home)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


# A compiler as sccache runs one: the metadata renamed into place at once, the rest
# later, and rustc's notices of both printed only at the end (as sccache replays them;
# TYPE is the "$message_type" field, which Rust 1.63's notices do not have).
SLOW_COMPILER = """#!/bin/sh
out=$1
printf meta > "$out/libdep-1a2b.rmeta.tmp" && mv "$out/libdep-1a2b.rmeta.tmp" "$out/libdep-1a2b.rmeta"
sleep 2
printf code > "$out/libdep-1a2b.rlib"
echo '{TYPE"artifact":"'"$out"'/libdep-1a2b.rmeta","emit":"metadata"}' >&2
echo '{TYPE"artifact":"'"$out"'/libdep-1a2b.rlib","emit":"link"}' >&2
echo 'warning: replayed' >&2
exit 3
"""


@pytest.mark.parametrize("message_type", ['"$message_type":"artifact",', ""],
                         ids=["rust-1.96", "rust-1.63"])
def test_the_sccache_wrapper_says_a_library_s_metadata_is_written_as_it_appears(
        tmp_path, message_type):
    compiler = tmp_path / "compiler"
    compiler.write_text(SLOW_COMPILER.replace("TYPE", message_type))
    compiler.chmod(0o755)
    wrapper = write_pipelined(tmp_path, compiler)
    out = tmp_path / "deps"
    out.mkdir()
    (out / "libdep-1a2b.rmeta").write_text("stale, from an earlier build")
    # The first argument is the one cargo gives: rustc's path (here, the out dir the
    # stand-in writes to, which the wrapper passes on as it is).
    started = time.monotonic()
    compile = subprocess.Popen(
        [str(wrapper), str(out), "--crate-name", "dep", "--edition=2021", "src/lib.rs",
         "--error-format=json", "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
         "--crate-type", "lib", "--emit=dep-info,metadata,link", "-C", "opt-level=3",
         "-C", "extra-filename=-1a2b", "--out-dir", str(out)],
        stderr=subprocess.PIPE, text=True)
    first = compile.stderr.readline()
    said_at = time.monotonic() - started
    rest = compile.stderr.read()
    assert compile.wait() == 3
    # Said before the compile ended (2 s), about the new file, not the stale one.
    assert said_at < 1.5, said_at
    assert first.strip() == ('{"$message_type":"artifact","artifact":"'
                             f'{out}/libdep-1a2b.rmeta","emit":"metadata"}}')
    # The replayed notice of the metadata is dropped (cargo takes it once, and
    # panics on a second); the rest stays.
    assert "libdep-1a2b.rmeta" not in rest
    assert "libdep-1a2b.rlib" in rest and "warning: replayed" in rest


def test_the_sccache_wrapper_passes_any_other_command_as_it_is(tmp_path):
    compiler = tmp_path / "compiler"
    compiler.write_text('#!/bin/sh\necho "args: $*"\necho "to stderr" >&2\nexit 4\n')
    compiler.chmod(0o755)
    wrapper = write_pipelined(tmp_path, compiler)
    for args in (["--show-stats", "--stats-format", "json"],
                 ["rustc", "--crate-name", "build_script_build", "build.rs",
                  "--emit=dep-info,link", "--json=artifacts", "--out-dir", str(tmp_path)]):
        done = subprocess.run([str(wrapper), *args], capture_output=True, text=True)
        assert done.returncode == 4
        assert done.stdout == f"args: {' '.join(args)}\n"
        assert done.stderr == "to stderr\n"
