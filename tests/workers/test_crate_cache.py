"""The worker tool's crate cache, the compile cache of a docker pool's dependencies,
as cargo calls it (through the wrapper the compile cache step writes), around a
stand-in compiler that writes what rustc writes for a library and counts its calls.
Real compiles through it, on a real pool, are in tests/docker/test_compile_cache.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.worker_tool import run_tool, tool_in

# What rustc writes for a library in cargo's pipelined compile: metadata, then
# (after DELAY seconds) the library and its dep-info, which lists the sources it
# read (SOURCES) and the variables it read (ENV_DEPS), with notices on stderr as
# rustc prints them. Each call adds a line to CALLS; EXIT is its exit status.
STAND_IN = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
def value(flag):
    return args[args.index(flag) + 1]
out, name = value("--out-dir"), value("--crate-name")
extra = next(a.split("=", 1)[1] for a in args if a.startswith("extra-filename="))
with open(os.environ["CALLS"], "a") as calls:
    calls.write(" ".join(args) + "\\n")
def notice(path, emit):
    print(json.dumps({{"$message_type": "artifact", "artifact": path, "emit": emit}}),
          file=sys.stderr, flush=True)
rmeta = os.path.join(out, f"lib{{name}}{{extra}}.rmeta")
with open(rmeta, "w") as f:
    f.write("metadata of " + " ".join(args))
notice(rmeta, "metadata")
time.sleep(float(os.environ.get("DELAY", "0")))
sources = os.environ.get("SOURCES", "").split()
with open(os.path.join(out, f"lib{{name}}{{extra}}.rlib"), "w") as f:
    f.write("code of " + " ".join(open(s).read() for s in sources))
lines = [f"{{out}}/lib{{name}}{{extra}}.rmeta: " + " ".join(sources), ""]
lines += [f"{{s}}:" for s in sources] + [""]
for var in os.environ.get("ENV_DEPS", "").split():
    lines.append(f"# env-dep:{{var}}=" + os.environ[var] if var in os.environ
                 else f"# env-dep:{{var}}")
with open(os.path.join(out, f"{{name}}{{extra}}.d"), "w") as f:
    f.write("\\n".join(lines) + "\\n")
print("warning: a lint, as rustc reports it", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


class Worker:
    """A worker's home with the worker tool and the cache wrapper written as a build's
    compile cache step writes it, a cache directory, and a stand-in compiler."""

    def __init__(self, root: Path, identity: str = "rustc 1.96.0"):
        self.root = root
        self.home = root / "home"
        self.cache = root / "cache"
        self.out = root / "target" / "deps"
        self.calls = root / "calls"
        self.source = root / "registry" / "dep-1.0.0" / "src" / "lib.rs"
        for place in (self.home, self.cache, self.out, self.source.parent):
            place.mkdir(parents=True, exist_ok=True)
        self.source.write_text("pub fn dep() {}")
        self.compiler = root / "rustc"
        self.compiler.write_text(STAND_IN.format(python=sys.executable))
        self.compiler.chmod(0o755)
        self.tool = tool_in(root / "tool")
        # rustup's toolchains stay where they are (the compile cache step asks rustc).
        rustup = os.environ.get("RUSTUP_HOME", os.path.expanduser("~/.rustup"))
        self.env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "RUSTUP_HOME": rustup,
                    "CALLS": str(self.calls), "SOURCES": str(self.source),
                    "CARGO_PKG_NAME": "dep", "CARGO_PKG_VERSION": "1.0.0",
                    "RUSTFARM_TOOL": str(self.tool), "RUSTFARM_COMPILE_CACHE": str(self.cache),
                    "RUSTFARM_COMPILE_CACHE_SIZE": str(10 << 30)}
        self.new_build(identity)

    def new_build(self, identity: str = "rustc 1.96.0", **env: str) -> None:
        """What a new build's container starts with: the compile cache step's wrapper
        (counts afresh), the compiler it named (here, ``identity``) and an empty target
        directory (the cache's volume stays)."""
        done, answer = run_tool(self.tool, "compile-cache", "setup",
                                env={**os.environ, **self.env, **env})
        assert done.returncode == 0 and answer["kind"] == "crates", done.stderr
        self.wrapper = answer["wrapper"]
        self.env["RUSTFARM_COMPILER"] = identity
        for stale in self.out.iterdir():
            stale.unlink()

    def library_args(self, *extra: str) -> list[str]:
        return ["--crate-name", "dep", "--edition=2021", str(self.source),
                "--error-format=json",
                "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
                "--crate-type", "lib", "--emit=dep-info,metadata,link", "-C",
                "opt-level=3", "-C", "extra-filename=-1a2b", "--out-dir", str(self.out),
                "-L", f"dependency={self.out}", *extra]

    def rustc(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """The wrapper as cargo calls it: rustc's path first."""
        return subprocess.run([self.wrapper, str(self.compiler), *args],
                              env={**self.env, **env}, capture_output=True, text=True,
                              cwd=self.root)

    def stats(self, **env: str) -> dict:
        done, answer = run_tool(self.tool, "compile-cache", "stats", env={**self.env, **env})
        assert done.returncode == 0, done.stderr
        return answer

    def compiles(self) -> int:
        return len(self.calls.read_text().splitlines()) if self.calls.exists() else 0

    def outputs(self) -> dict[str, str]:
        return {path.name: path.read_text() for path in sorted(self.out.iterdir())}

    def entries(self) -> list[Path]:
        return sorted(p for p in (self.cache / "crates-v1").glob("*/*")
                      if p.parent.name != "tmp")


@pytest.fixture
def worker(tmp_path) -> Worker:
    return Worker(tmp_path)


def test_a_library_one_build_compiled_another_takes_from_the_cache(worker):
    first = worker.rustc(*worker.library_args())
    assert first.returncode == 0, first.stderr
    compiled = worker.outputs()
    assert sorted(compiled) == ["dep-1a2b.d", "libdep-1a2b.rlib", "libdep-1a2b.rmeta"]
    assert worker.stats() | {"size": 0} == {
        "kind": "crates", "location": str(worker.cache), "read_only": False, "hits": 0, "misses": 1,
        "not_cacheable": 0, "errors": 0, "from_cache": [], "compiled": ["dep"],
        "size": 0, "limit": 10 << 30, "evicted": 0}

    worker.new_build()
    second = worker.rustc(*worker.library_args())
    assert second.returncode == 0, second.stderr
    assert worker.compiles() == 1                     # not compiled again
    assert worker.outputs() == compiled               # the same files, in place
    assert second.stderr == first.stderr              # rustc's output, replayed
    stats = worker.stats()
    assert (stats["hits"], stats["misses"], stats["from_cache"]) == (1, 0, ["dep"])


@pytest.mark.parametrize("change", ["source", "arguments", "extern", "variable read",
                                    "compiler", "cargo's variables"])
def test_a_change_to_anything_the_compile_read_or_was_given_misses(worker, change):
    extern = worker.root / "libother-9f9f.rmeta"
    extern.write_text("other's metadata")
    args = worker.library_args("--extern", f"other={extern}")
    env = {"ENV_DEPS": "DEP_SETTING", "DEP_SETTING": "one"}
    assert worker.rustc(*args, **env).returncode == 0
    worker.new_build()
    assert worker.rustc(*args, **env).returncode == 0
    assert worker.compiles() == 1, "the unchanged compile was not taken from the cache"

    worker.new_build("rustc 1.96.1" if change == "compiler" else "rustc 1.96.0")
    if change == "source":
        worker.source.write_text("pub fn dep() { changed() }")
    elif change == "arguments":
        args = args + ["--cfg", 'feature="std"']
    elif change == "extern":
        extern.write_text("other's metadata, rebuilt")
    elif change == "variable read":
        env["DEP_SETTING"] = "two"
    elif change == "cargo's variables":
        env["CARGO_PKG_VERSION"] = "1.0.1"
    done = worker.rustc(*args, **env)
    assert done.returncode == 0, done.stderr
    assert worker.compiles() == 2
    stats = worker.stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (0, 1, 0), stats
    if change == "source":
        assert "changed()" in worker.outputs()["libdep-1a2b.rlib"]


def test_rustc_s_output_reaches_cargo_as_it_is_written(worker):
    # Cargo starts a library's dependents on rustc's notice that its metadata is
    # written (its pipelining): the notice must not wait for the compile's end.
    started = time.monotonic()
    compile = subprocess.Popen([worker.wrapper, str(worker.compiler), *worker.library_args()],
                               env={**worker.env, "DELAY": "2"}, stderr=subprocess.PIPE,
                               text=True, cwd=worker.root)
    first = json.loads(compile.stderr.readline())
    said_at = time.monotonic() - started
    compile.stderr.read()
    assert compile.wait() == 0
    assert first["emit"] == "metadata" and said_at < 1.5, (first, said_at)
    assert worker.stats()["misses"] == 1


def test_a_read_only_cache_compiles_and_stores_nothing(worker):
    done = worker.rustc(*worker.library_args(), RUSTFARM_COMPILE_CACHE_READ_ONLY="1")
    assert done.returncode == 0, done.stderr
    assert worker.entries() == []
    stats = worker.stats(RUSTFARM_COMPILE_CACHE_READ_ONLY="1")
    assert (stats["misses"], stats["errors"], stats["read_only"]) == (1, 0, True)


def test_a_failed_compile_fails_as_rustc_did_and_is_not_stored(worker):
    done = worker.rustc(*worker.library_args(), EXIT="3")
    assert done.returncode == 3
    assert "warning: a lint, as rustc reports it" in done.stderr
    assert worker.entries() == []


def test_programs_native_libraries_and_the_project_s_own_crates_go_to_rustc(worker):
    build_script = ["--crate-name", "build_script_build", "build.rs", "--crate-type", "bin",
                    "--emit=dep-info,link", "--out-dir", str(worker.out), "-C",
                    "extra-filename=-77"]
    for args, env in ((worker.library_args("-l", "static=z"), {}),
                      (worker.library_args(), {"CARGO_PRIMARY_PACKAGE": "1"})):
        for _ in range(2):
            assert worker.rustc(*args, **env).returncode == 0
    assert worker.compiles() == 4 and worker.entries() == []
    done = subprocess.run([worker.wrapper, "echo", *build_script], env=worker.env,
                          capture_output=True, text=True)
    assert done.stdout.split() == build_script
    stats = worker.stats()
    # The native library's compiles and the build script counted; the project's own
    # crate is rustc's alone.
    assert (stats["hits"], stats["misses"], stats["not_cacheable"]) == (0, 0, 3), stats


def test_an_unreadable_entry_is_a_miss_and_is_replaced(worker):
    assert worker.rustc(*worker.library_args()).returncode == 0
    [entry] = worker.entries()
    (entry / "manifest.json").write_text("{not json")
    worker.new_build()
    done = worker.rustc(*worker.library_args())
    assert done.returncode == 0, done.stderr
    assert worker.compiles() == 2
    [entry] = worker.entries()
    assert json.loads((entry / "manifest.json").read_text())["files"]
    worker.new_build()
    assert worker.rustc(*worker.library_args()).returncode == 0
    assert worker.compiles() == 2 and worker.stats()["hits"] == 1


def test_the_cache_keeps_to_its_size_least_recently_used_first(worker):
    for name in ("old", "used", "new"):
        args = worker.library_args("--cfg", f'feature="{name}"')
        assert worker.rustc(*args).returncode == 0
    entries = worker.entries()
    size = sum(f.stat().st_size for f in entries[0].iterdir())
    by_feature = {}
    for entry in entries:
        feature = next(n for n in ("old", "used", "new")
                       if f'feature="{n}"' in (entry / "metadata").read_text())
        by_feature[feature] = entry
    now = time.time()
    for age, name in ((300, "old"), (200, "used"), (100, "new")):
        os.utime(by_feature[name] / "manifest.json", (now - age, now - age))
    # "used" is taken from the cache: it is the most recently used now.
    worker.new_build()
    assert worker.rustc(*worker.library_args("--cfg", 'feature="used"')).returncode == 0
    assert worker.compiles() == 3
    stats = worker.stats(RUSTFARM_COMPILE_CACHE_SIZE=str(int(size * 2.5)))
    assert stats["evicted"] == 1, stats
    assert {e.name for e in worker.entries()} == {by_feature["used"].name,
                                                  by_feature["new"].name}


def test_the_next_build_finds_the_wrapper_beside_its_target_directory_untouched(worker):
    """Cargo asks rustc its version and a target's file names again whenever
    RUSTC_WRAPPER is another file (path, size, times): the wrapper lives in the
    project's volume, beside the target directory, and a build that would write it
    as it is leaves it be, whatever its compiler. A changed wrapper is written anew."""
    target_dir = worker.root / "project" / "target"
    worker.new_build(CARGO_TARGET_DIR=str(target_dir))
    wrapper = Path(worker.wrapper)
    assert wrapper.parent == target_dir.parent / ".rustfarm"
    assert [s.name for s in wrapper.parent.iterdir()] == ["rustc-for-dependencies.sh"]
    assert os.access(wrapper, os.X_OK)
    before = (wrapper.stat().st_ino, wrapper.stat().st_mtime_ns)
    time.sleep(0.01)

    worker.new_build("rustc 1.97.0", CARGO_TARGET_DIR=str(target_dir))
    assert Path(worker.wrapper) == wrapper
    assert (wrapper.stat().st_ino, wrapper.stat().st_mtime_ns) == before
    assert worker.rustc(*worker.library_args()).returncode == 0
    assert worker.stats()["misses"] == 1

    wrapper.write_text("#!/bin/sh\nexec \"$@\"\n")
    worker.new_build(CARGO_TARGET_DIR=str(target_dir))
    assert wrapper.stat().st_ino != before[0]
    assert "crate-cache" in wrapper.read_text()
    assert [s.name for s in wrapper.parent.iterdir()] == ["rustc-for-dependencies.sh"]


def test_the_cache_is_walked_for_its_size_once_per_interval(worker):
    """Keeping the cache to its size stats every entry: the builds that share it walk
    it once every few minutes (SCAN_EVERY), in between they take the last walk's size.
    A walk also removes work directories a stopped build left behind."""
    def compile_features(*names):
        for name in names:
            assert worker.rustc(*worker.library_args("--cfg", f'feature="{name}"')
                                ).returncode == 0

    compile_features("a", "b")
    size = sum(f.stat().st_size for f in worker.entries()[0].iterdir())
    limit = str(int(size * 2.5))
    assert worker.stats(RUSTFARM_COMPILE_CACHE_SIZE=limit)["evicted"] == 0
    scanned = worker.cache / "crates-v1" / "scanned.json"
    assert json.loads(scanned.read_text())["size"] == 2 * size

    compile_features("c", "d")
    stats = worker.stats(RUSTFARM_COMPILE_CACHE_SIZE=limit)
    assert (stats["size"], stats["evicted"]) == (2 * size, 0)   # the last walk's
    assert len(worker.entries()) == 4

    tmp = worker.cache / "crates-v1" / "tmp"
    abandoned, current = tmp / "abandoned.0", tmp / "current.0"
    for work in (abandoned, current):
        work.mkdir(parents=True)
        (work / "link").write_text("part of an entry")
    hours_ago = time.time() - 7200
    os.utime(abandoned, (hours_ago, hours_ago))
    minutes_ago = time.time() - 301
    os.utime(scanned, (minutes_ago, minutes_ago))
    stats = worker.stats(RUSTFARM_COMPILE_CACHE_SIZE=limit)
    assert (stats["size"], stats["evicted"]) == (2 * size, 2)
    assert len(worker.entries()) == 2
    assert sorted(p.name for p in tmp.iterdir()) == ["current.0"]
