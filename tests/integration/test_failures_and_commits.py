"""Compile errors end FAILURE with the compiler's words; pushed commits start builds."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.crates import broken_crate, failing_test_crate
from tests.support.farm import EXAMPLE, FARM, RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET, require_cargo

OTHER_TARGET = "i686-unknown-linux-gnu"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def project_repo(tmp_path_factory):
    """A bare git repository holding the example, and a clone to push from."""
    root = tmp_path_factory.mktemp("git")
    bare = root / "hello.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = root / "work"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(work)], check=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "dev@example.invalid")
    git(work, "config", "user.name", "dev")
    git(work, "add", ".")
    git(work, "commit", "-qm", "hello")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, work


@pytest.fixture(scope="module")
def git_farm(tmp_path_factory, project_repo):
    require_cargo()
    bare, _ = project_repo
    broken = broken_crate(tmp_path_factory.mktemp("broken"))
    failing = failing_test_crate(tmp_path_factory.mktemp("failing"))
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(f"""\
  hello:
    source: file://{bare}
    branches: [main]
    poll_interval: 1
  broken:
    source: {broken}
    targets: [{HOST_TARGET}]
  failing:
    source: {failing}
    targets: [{HOST_TARGET}]
""", targets=f"""\
  {HOST_TARGET}: {{pool: local, runner: native}}
  {OTHER_TARGET}: {{pool: local}}
"""))
    try:
        yield farm.up()
    finally:
        farm.down()


def test_compile_error_fails_the_build_with_the_compiler_message(git_farm):
    git_farm.login()
    [brid] = git_farm.force("force-broken").values()
    build = git_farm.wait_for_build(brid)
    assert build["results"] == 2, "a compile error is FAILURE, not EXCEPTION"
    log = git_farm.step_log(build, "cargo build")
    assert "error[E0308]: mismatched types" in log
    assert 'let n: u32 = "four";' in log
    steps = {s["name"]: s for s in git_farm.steps(build)}
    assert "package" not in steps
    assert steps["cargo build"]["state_string"] == "compile failed: 1 error"
    assert steps["fetch source"]["state_string"] == "unpacked 2 changed files"


def test_build_wait_prints_the_compiler_error_where_the_developer_is(git_farm):
    done = git_farm.farm("build", "broken", "--wait", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "failed step: cargo build (compile failed: 1 error)" in out
    assert "error[E0308]: mismatched types" in out
    assert "--> src/main.rs:2:18" in out
    assert 'let n: u32 = "four";' in out
    assert out.index("error[E0308]") < out.index("log: http://")
    # The same log, whole, from the terminal; --config may follow the command.
    logs = subprocess.run([FARM, "logs", "broken", "--step", "cargo build",
                           "--config", str(git_farm.config)], capture_output=True, text=True,
                          cwd="/")
    assert logs.returncode == 0, logs.stderr
    assert "=== cargo build: failure (compile failed: 1 error)" in logs.stdout
    assert "error[E0308]: mismatched types" in logs.stdout
    assert "error: could not compile `broken`" in logs.stdout


def test_build_wait_prints_failed_tests_and_their_panics(git_farm):
    done = git_farm.farm("build", "failing", "--wait", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "failed step: cargo test (1 of 2 tests failed)" in out
    assert "test tests::adds_up failed:" in out
    assert "arithmetic is broken" in out
    assert "left: 2" in out and "right: 3" in out
    assert "tests::fine" not in out.split("failed step:")[1].split("log: ")[0]
    assert "test result: FAILED. 1 passed; 1 failed" in out


def test_farm_logs_names_what_is_missing(git_farm):
    unknown_step = git_farm.farm("logs", "broken", "--step", "cargo bild", check=False)
    assert unknown_step.returncode == 1
    assert "no step 'cargo bild' (did you mean 'cargo build'?)" in unknown_step.stderr
    unknown_build = git_farm.farm("logs", "broken", "--build", "999", check=False)
    assert "has no build #999" in unknown_build.stderr
    several = git_farm.farm("logs", "hello", check=False)
    assert "name one with --target" in several.stderr
    assert "Traceback" not in unknown_step.stderr + unknown_build.stderr + several.stderr


def test_pushed_commit_builds_every_target_of_the_project(git_farm, project_repo):
    _, work = project_repo
    builders = {b["name"]: b["builderid"] for b in git_farm.api("builders")["builders"]}
    time.sleep(3)    # let the poller record the current head first
    main = work / "src" / "main.rs"
    main.write_text(main.read_text().replace("fn main() {", "fn main() {\n    // a new commit"))
    git(work, "commit", "-qam", "touch main")
    git(work, "push", "-q", "origin", "main")
    pushed = git(work, "rev-parse", "HEAD")

    found: dict[str, dict] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(found) < 2:
        for target in (HOST_TARGET, OTHER_TARGET):
            builds = git_farm.api("builds", builderid=builders[f"hello:{target}"],
                                  property="got_revision")["builds"]
            for build in builds:
                if build["complete"] and build["properties"].get("got_revision",
                                                                 [None])[0] == pushed:
                    found[target] = build
        time.sleep(1)
    assert set(found) == {HOST_TARGET, OTHER_TARGET}, "the commit did not build every target"
    assert found[HOST_TARGET]["results"] == 0
    changes = git_farm.api("changes")["changes"]
    assert any(c["revision"] == pushed and c["project"] == "hello" for c in changes)
    # One clone of the project on the master: the poller's refs beside the branches the
    # snapshots read.
    sources = git_farm.state / "sources"
    assert sorted(p.name for p in sources.iterdir()) == ["hello.git"]
    refs = git(sources / "hello.git", "for-each-ref", "--format=%(refname)").split()
    assert "refs/heads/main" in refs and any(r.startswith("refs/buildbot/") for r in refs)
