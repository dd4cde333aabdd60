"""The worker tool as workers run it (the farm's zip application): unpacking sources,
packing binaries, the compile cache's sccache wrapper and counts, each command's one
JSON answer, and the file itself, the same bytes wherever it is assembled."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from rustfarm.worker_tool.protocol import ProtocolError, read_answer
from rustfarm.cargo_lock import package_id_name_version
from rustfarm.worker_tool_file import assemble, package_root, tool_digest
from tests.support.worker_tool import run_tool, tool_in


@pytest.fixture(scope="module")
def tool(tmp_path_factory) -> Path:
    return tool_in(tmp_path_factory.mktemp("tool"))


def run(tool: Path, *args, cwd: Path, **kwargs):
    """The tool's process and its answer."""
    return run_tool(tool, *args, cwd=cwd, **kwargs)


def snapshot(path: Path, files: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))


def test_unpack_keeps_unchanged_files_untouched_and_removes_stale_ones(tool, tmp_path):
    snapshot(tmp_path / "one.tar.gz", {"src/a.rs": "a", "src/b.rs": "b", "old.rs": "x"})
    assert run(tool, "unpack", "one.tar.gz", "src", cwd=tmp_path)[0].returncode == 0
    past = time.time() - 3600
    for name in ("src/a.rs", "src/b.rs"):
        os.utime(tmp_path / "src" / name, (past, past))
    snapshot(tmp_path / "two.tar.gz", {"src/a.rs": "a", "src/b.rs": "changed"})
    done, answer = run(tool, "unpack", "two.tar.gz", "src", cwd=tmp_path)
    assert done.returncode == 0
    assert answer == {"entries": 3, "written": 1, "removed": 1}
    assert (tmp_path / "src/src/a.rs").stat().st_mtime == past
    assert (tmp_path / "src/src/b.rs").stat().st_mtime > past
    assert (tmp_path / "src/src/b.rs").read_text() == "changed"
    assert not (tmp_path / "src/old.rs").exists()


def test_unpack_writes_nothing_outside_its_directory(tool, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind in (("../escaped.rs", tarfile.REGTYPE), ("/abs.rs", tarfile.REGTYPE),
                           ("link", tarfile.SYMTYPE), ("ok.rs", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            info.size = 0
            tar.addfile(info, io.BytesIO(b""))
    (tmp_path / "s.tar.gz").write_bytes(gzip.compress(buffer.getvalue()))
    done, answer = run(tool, "unpack", "s.tar.gz", "dest", cwd=tmp_path)
    assert done.returncode == 0 and answer["written"] == 1
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["ok.rs"]
    assert not (tmp_path / "escaped.rs").exists()


def test_package_is_reproducible_with_a_checksum(tool, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hello").write_bytes(b"\x7fELF fake")
    done, answer = run(tool, "package", "out.tar.gz", bindir, "hello", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256((tmp_path / "out.tar.gz").read_bytes()).hexdigest()
    # The digest the master checks the upload against; no file is left for it.
    assert answer == {"archive": "out.tar.gz", "sha256": digest,
                      "binaries": [{"name": "hello", "size": 9,
                                    "sha256": hashlib.sha256(b"\x7fELF fake").hexdigest()}],
                      "linked": [], "crate": {}}
    assert not (tmp_path / "SHA256SUMS").exists()
    os.utime(bindir / "hello", (0, 12345))
    run(tool, "package", "out.tar.gz", bindir, "hello", cwd=tmp_path)
    assert hashlib.sha256((tmp_path / "out.tar.gz").read_bytes()).hexdigest() == digest
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        [member] = tar.getmembers()
        assert (member.name, member.mode, member.mtime, member.uid, member.uname) == \
            ("hello", 0o755, 0, 0, "")


def test_package_names_a_missing_binary(tool, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "other").write_text("x")
    done, answer = run(tool, "package", "out.tar.gz", tmp_path / "bin", "hello", cwd=tmp_path)
    assert done.returncode == 1
    assert answer["missing"] == ["hello"] and "binary hello not found" in answer["error"]
    assert b"other" in done.stderr


def test_wrong_arguments_are_an_answer_too(tool, tmp_path):
    done, answer = run(tool, "unpack", "only-one", cwd=tmp_path)
    assert done.returncode == 1 and "usage: unpack SNAPSHOT.tar.gz|- DEST" in answer["error"]
    done, answer = run(tool, "no-such-command", cwd=tmp_path)
    assert done.returncode == 2 and answer is None and b"usage:" in done.stderr


def test_the_master_reads_one_answer_and_nothing_else():
    assert read_answer('{"written": 1}\n') == {"written": 1}
    for text in ("", "unpacked 3 entries", "[1, 2]", '{"a": 1}\n{"b": 2}\n'):
        with pytest.raises(ProtocolError):
            read_answer(text)


def test_a_snapshot_comes_base64_encoded_on_standard_input(tool, tmp_path):
    snapshot(tmp_path / "s.tar.gz", {"src/main.rs": "fn main() {}", "Cargo.toml": "[package]"})
    done, answer = run(tool, "unpack", "-", "src", cwd=tmp_path,
                       input=base64.b64encode((tmp_path / "s.tar.gz").read_bytes()))
    assert done.returncode == 0, done.stderr
    assert answer["written"] == 2 and answer["removed"] == 0
    assert (tmp_path / "src/src/main.rs").read_text() == "fn main() {}"
    assert not (tmp_path / "-").exists()


def test_the_tool_is_the_same_bytes_wherever_it_is_assembled(tmp_path):
    """Its digest names a version: the package copied elsewhere, with other file times,
    gives the same file; a change to any module gives another."""
    copy = tmp_path / "worker_tool"
    subprocess.run(["cp", "-r", str(package_root()), str(copy)], check=True)
    for path in copy.rglob("*"):
        os.utime(path, (1, 1))
    assert tool_digest(assemble(copy)) == tool_digest()
    (copy / "unpack.py").write_text("# changed\n")
    assert tool_digest(assemble(copy)) != tool_digest()


def pipelined_env(tmp_path: Path, tool: Path, sccache_stand_in: str) -> dict:
    """The cargo step's environment for the sccache wrapper, with a stand-in sccache
    first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sccache").write_text(sccache_stand_in)
    (bin_dir / "sccache").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
            "RUSTFARM_TOOL": str(tool)}


def pipelined_wrapper(tool: Path) -> str:
    from importlib import resources
    return str(resources.files("rustfarm.worker_tool").joinpath("wrappers",
                                                                 "sccache-pipelined.sh"))


# sccache as it runs a compiler: the metadata renamed into place at once, the rest
# later, and rustc's notices of both printed only at the end (as sccache replays them;
# TYPE is the "$message_type" field, which Rust 1.63's notices do not have). Its first
# argument is the out dir (where cargo gives rustc's path).
SLOW_SCCACHE = """#!/bin/sh
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
        tool, tmp_path, message_type):
    env = pipelined_env(tmp_path, tool, SLOW_SCCACHE.replace("TYPE", message_type))
    out = tmp_path / "deps"
    out.mkdir()
    (out / "libdep-1a2b.rmeta").write_text("stale, from an earlier build")
    started = time.monotonic()
    compile = subprocess.Popen(
        [pipelined_wrapper(tool), str(out), "--crate-name", "dep", "--edition=2021",
         "src/lib.rs", "--error-format=json",
         "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
         "--crate-type", "lib", "--emit=dep-info,metadata,link", "-C", "opt-level=3",
         "-C", "extra-filename=-1a2b", "--out-dir", str(out)],
        stderr=subprocess.PIPE, text=True, env=env)
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


def test_the_sccache_wrapper_passes_any_other_command_as_it_is(tool, tmp_path):
    env = pipelined_env(tmp_path, tool, '#!/bin/sh\necho "args: $*"\n'
                                        'echo "to stderr" >&2\nexit 4\n')
    args = ["rustc", "--crate-name", "build_script_build", "build.rs",
            "--emit=dep-info,link", "--json=artifacts", "--out-dir", str(tmp_path)]
    done = subprocess.run([pipelined_wrapper(tool), *args], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 4
    assert done.stdout == f"args: {' '.join(args)}\n"
    assert done.stderr == "to stderr\n"


# sccache 0.16's --show-stats for an upload's build on a read-only cache: every
# compiled crate's store was refused; two of its calls had no input (cargo's -vV).
READ_ONLY_STATS = """{"stats":{"requests_not_cacheable":11,"cache_errors":{"counts":{}},
"not_cached":{"missing input":2,"crate-type":9},
"cache_hits":{"counts":{"Rust":1}},"cache_misses":{"counts":{"Rust":8}},
"cache_read_errors":0,"non_cacheable_compilations":1,"cache_write_errors":8},
"cache_location":"S3, bucket: cache"}"""


def test_sccache_s_counts_come_in_the_crate_cache_s_shape(tool, tmp_path):
    (tmp_path / "stats.json").write_text(READ_ONLY_STATS)
    env = pipelined_env(tmp_path, tool, f"#!/bin/sh\ncat {tmp_path / 'stats.json'}\n")
    done, answer = run(tool, "compile-cache", "stats", cwd=tmp_path,
                       env={**env, "RUSTFARM_COMPILE_CACHE_READ_ONLY": "1"})
    assert done.returncode == 0, done.stderr
    # A read-only cache's refused writes are not errors; calls with no input are no
    # compilations.
    assert answer == {"kind": "sccache", "location": "S3, bucket: cache", "read_only": True,
                      "hits": 1, "misses": 8, "not_cacheable": 10, "errors": 0}
    done, answer = run(tool, "compile-cache", "stats", cwd=tmp_path, env=env)
    assert answer["errors"] == 8 and answer["read_only"] is False
    env = pipelined_env(tmp_path, tool, "#!/bin/sh\necho 'error: no server' >&2\nexit 2\n")
    done, answer = run(tool, "compile-cache", "stats", cwd=tmp_path, env=env)
    assert done.returncode == 1 and "no server" in answer["error"]


def test_package_ships_the_binaries_cargo_reports_building(tool, tmp_path):
    """Without a list of binaries: those of cargo's compiler-artifact messages, from the
    build's cargo command run again (which builds nothing new); not a library, not a
    binary its features leave unbuilt."""
    from tests.integration.conftest import require_cargo
    require_cargo()
    crate = tmp_path / "crate"
    (crate / "src" / "bin").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "tools"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[features]\nextra = []\n\n[[bin]]\nname = "hidden"\npath = "src/hidden.rs"\n'
        'required-features = ["extra"]\n')
    (crate / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (crate / "src" / "main.rs").write_text("fn main() {}\n")
    (crate / "src" / "bin" / "second.rs").write_text("fn main() {}\n")
    (crate / "src" / "hidden.rs").write_text("fn main() {}\n")
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target")}
    build = ["cargo", "build", "--offline"]
    assert subprocess.run(build, cwd=crate, env=env, capture_output=True).returncode == 0
    done, answer = run(tool, "package", "out.tar.gz", "--built-by", crate, *build,
                       cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [b["name"] for b in answer["binaries"]] == ["second", "tools"]
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        assert tar.getnames() == ["second", "tools"]
    (crate / "src" / "main.rs").unlink()
    (crate / "src" / "bin" / "second.rs").unlink()
    done, answer = run(tool, "package", "out.tar.gz", "--built-by", crate, *build,
                       cwd=tmp_path, env=env)
    assert done.returncode == 1 and "cargo built no binary" in answer["error"]


def test_package_names_what_cargo_linked_for_the_target_and_ships_the_listed_binaries(
        tool, tmp_path):
    """``linked``: the packages compiled for ``--target`` (a dependency), not those only
    the build machine ran (a build script's dependency); ``--only``: the binaries named."""
    from tests.integration.conftest import require_cargo
    require_cargo()
    triple = subprocess.run(["rustc", "-vV"], capture_output=True, text=True,
                            check=True).stdout.split("host: ")[1].split()[0]
    for name in ("linked", "generator"):
        (tmp_path / name / "src").mkdir(parents=True)
        (tmp_path / name / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion = "0.2.0"\nedition = "2021"\n')
        (tmp_path / name / "src" / "lib.rs").write_text("pub fn f() -> u8 { 7 }\n")
    crate = tmp_path / "crate"
    (crate / "src" / "bin").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "tools"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[dependencies]\nlinked = { path = "../linked" }\n\n'
        '[build-dependencies]\ngenerator = { path = "../generator" }\n')
    (crate / "build.rs").write_text("fn main() { generator::f(); }\n")
    (crate / "src" / "main.rs").write_text("fn main() { linked::f(); }\n")
    (crate / "src" / "bin" / "second.rs").write_text("fn main() {}\n")
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target")}
    build = ["cargo", "build", "--offline", "--target", triple]
    assert subprocess.run(build, cwd=crate, env=env, capture_output=True).returncode == 0
    done, answer = run(tool, "package", "out.tar.gz", "--only", "tools", "--built-by", crate,
                       *build, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [b["name"] for b in answer["binaries"]] == ["tools"]
    built = tmp_path / "target" / triple / "debug" / "tools"
    assert answer["binaries"][0]["sha256"] == hashlib.sha256(built.read_bytes()).hexdigest()
    assert sorted(map(package_id_name_version, answer["linked"])) == [("linked", "0.2.0"),
                                                                     ("tools", "0.1.0")]
    done, answer = run(tool, "package", "out.tar.gz", "--only", "absent", "--built-by", crate,
                       *build, cwd=tmp_path, env=env)
    assert done.returncode == 1 and "binary absent not found" in answer["error"]


def test_a_long_answer_survives_buildbot_s_log_splitting():
    """A release's answer names every crate linked into it: longer than the 4,096
    characters at which Buildbot's log splits a line (196 crates gave 20 KB)."""
    import json

    from buildbot.util.lineboundaries import LineBoundaryFinder

    from rustfarm.master.tool_steps import tool_answer
    answer = {"linked": [f"registry+https://github.com/rust-lang/crates.io-index#crate-{i}@1.0.{i}"
                         for i in range(300)], "note": "a \"quoted\"\nline\tand \u00e9"}
    # As the worker sends a command's output: in chunks, as its pipe gives them.
    printed = json.dumps(answer, sort_keys=True) + "\n"
    finder = LineBoundaryFinder()
    logged = "".join(finder.append(printed[at:at + 1024]) or ""
                     for at in range(0, len(printed), 1024)) + (finder.flush() or "")
    assert logged.strip().count("\n") >= 4          # Buildbot split it
    assert tool_answer(logged) == answer
