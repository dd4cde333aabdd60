"""The helper the master sends to workers: unpacking sources and packing binaries."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

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
