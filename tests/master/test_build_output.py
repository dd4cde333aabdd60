"""What a failed build shows in the terminal, and the cargo steps' summaries."""

from __future__ import annotations

import pytest

from rustfarm.failures import error_lines
from rustfarm.master.cargo_steps import Cargo, CompileCacheStats
from rustfarm.master.tool_steps import WorkerTool

COMPILE_LOG = """\
 argv: ['cargo', 'build', '--release']
   Compiling broken v0.1.0 (/src)
warning: unused import: `std::fs`
 --> src/main.rs:1:5
  |
1 | use std::fs;
  |     ^^^^^^^

error[E0308]: mismatched types
 --> src/main.rs:2:18
  |
2 |     let n: u32 = "four";
  |            ---   ^^^^^^ expected `u32`, found `&str`
  |            |
  |            expected due to this

error: cannot find value `x` in this scope
 --> src/main.rs:3:5

For more information about this error, try `rustc --explain E0308`.
error: could not compile `broken` (bin "broken") due to 2 previous errors
program finished with exit code 101
"""

TEST_LOG = """\
running 2 tests
test tests::fine ... ok
test tests::adds_up ... FAILED

failures:

---- tests::adds_up stdout ----

thread 'tests::adds_up' panicked at src/main.rs:7:9:
assertion `left == right` failed: arithmetic is broken
  left: 2
 right: 3
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    tests::adds_up

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
"""


def test_compiler_errors_keep_their_locations_and_source_lines():
    lines = error_lines(COMPILE_LOG)
    assert lines[:3] == ["error[E0308]: mismatched types", " --> src/main.rs:2:18", "  |"]
    assert '2 |     let n: u32 = "four";' in lines
    assert "error: cannot find value `x` in this scope" in lines
    assert not [line for line in lines if "warning" in line or "unused import" in line]
    assert not [line for line in lines if "could not compile" in line]


def test_failed_tests_show_their_name_and_panic():
    assert error_lines(TEST_LOG) == [
        "test tests::adds_up failed:",
        "  thread 'tests::adds_up' panicked at src/main.rs:7:9:",
        "  assertion `left == right` failed: arithmetic is broken",
        "    left: 2",
        "   right: 3",
        "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
    ]


def test_long_output_is_capped_and_says_how_much_is_left():
    log = "".join(f"error[E0425]: cannot find value `v{i}`\n --> src/main.rs:{i}:1\n\n"
                  for i in range(100))
    lines = error_lines(log, limit=10)
    assert len(lines) == 11
    assert lines[-1] == "... (190 more lines in the log)"


def test_other_failures_show_the_end_of_the_log():
    log = " argv: ['python3', 'tool']\nsomething went wrong\nprogram finished with exit code 1\n"
    assert error_lines(log) == ["something went wrong"]


def cargo_step_after(subcommand: str, output: str) -> Cargo:
    step = Cargo(lockfile="Cargo.lock", tool=WorkerTool(b"tool"), command=["cargo", subcommand])
    for line in output.splitlines():
        step.output.line(line)
    return step


@pytest.mark.parametrize("subcommand, output, failed, summary", [
    ("build", "   Compiling hello v0.1.0\n", False, "compiled in 12 s"),
    ("build", COMPILE_LOG, True, "compile failed: 2 errors"),
    ("build", "error: linker `cc` not found\n", True, "compile failed: 1 error"),
    ("build", "Killed\n", True, "compile failed"),
    ("test", "test result: ok. 40 passed; 0 failed\ntest result: ok. 2 passed; 0 failed\n",
     False, "42 tests passed"),
    ("test", TEST_LOG, True, "1 of 2 tests failed"),
    ("test", COMPILE_LOG, True, "test build failed: 2 errors"),
])
def test_cargo_summaries_say_what_happened(subcommand, output, failed, summary):
    assert cargo_step_after(subcommand, output).summary(subcommand, failed, 12.2) == summary


# The worker tool's compile-cache stats for an upload's build on a read-only cache
# (the tool reads sccache's own statistics into this shape: tests/workers).
READ_ONLY_STATS = {"kind": "sccache", "location": "s3://cache/farm/", "read_only": True,
                   "hits": 1, "misses": 8, "not_cacheable": 10, "errors": 0}


def test_a_read_only_cache_s_counts_say_its_compiles_were_not_stored():
    read_only = CompileCacheStats.from_answer(READ_ONLY_STATS)
    assert (read_only.hits, read_only.misses, read_only.not_cacheable, read_only.errors) \
        == (1, 8, 10, 0)
    assert "8 (not stored: read-only for this build)" in read_only.report()
    assert read_only.as_property()["read_only"] is True
    assert CompileCacheStats.from_answer({"error": "sccache does not run"}) is None
    assert CompileCacheStats.from_answer({**READ_ONLY_STATS, "hits": "many"}) is None


# The worker tool's crate cache (a docker pool's) says which crates, too.
CRATE_CACHE_STATS = {"kind": "crates", "location": "/home/rustbuild/.cache/sccache",
                     "read_only": False, "hits": 2, "misses": 1, "not_cacheable": 3,
                     "errors": 0, "from_cache": ["memchr", "regex-syntax"],
                     "compiled": ["regex"], "size": 1000, "limit": 10737418240,
                     "evicted": 0}


def test_the_crate_cache_s_counts_name_the_crates():
    stats = CompileCacheStats.from_answer(CRATE_CACHE_STATS)
    assert (stats.hits, stats.misses, stats.not_cacheable, stats.errors) == (2, 1, 3, 0)
    assert stats.describe() == "2 crates from the cache, 1 compiled"
    report = stats.report()
    assert "crates from the cache (hits):      2\n" in report
    assert "from the cache:                    memchr regex-syntax\n" in report
    assert "compiled:                          regex\n" in report
    assert "1 (and stored)" in report
    assert "not stored: read-only" in CompileCacheStats.from_answer(
        {**CRATE_CACHE_STATS, "read_only": True}).report()


# cargo's words when a dependency's build script fails (ring's C code, on a target with
# no C compiler): the crate and the target say it, not the compiler's wall of text.
BUILD_SCRIPT_LOG = """\
   Compiling ring v0.17.8
error: failed to run custom build command for `ring v0.17.8`

Caused by:
  process didn't exit successfully: `/target/release/build/ring-1/build-script-build`
  --- stderr
  error occurred in cc-rs: failed to find tool "clang": No such file or directory
"""


@pytest.mark.parametrize("triple, c_compiler, summary", [
    ("wasm32-unknown-unknown", False, "ring v0.17.8: its build script failed for "
     "wasm32-unknown-unknown: wasm32-unknown-unknown has no C compiler"),
    ("mips-unknown-linux-musl", True,
     "ring v0.17.8: its build script failed for mips-unknown-linux-musl"),
])
def test_a_failed_build_script_names_its_crate_and_the_target(triple, c_compiler, summary):
    step = Cargo(lockfile="Cargo.lock", tool=WorkerTool(b"tool"), command=["cargo", "build"],
                 triple=triple, c_compiler=c_compiler)
    for line in BUILD_SCRIPT_LOG.splitlines():
        step.output.line(line)
    assert step.summary("build", True, 3.0) == summary
