"""Compile errors end FAILURE with the compiler's words; pushed commits start builds."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.farm import EXAMPLE, RunningFarm

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
    broken = tmp_path_factory.mktemp("broken")
    (broken / "src").mkdir()
    (broken / "Cargo.toml").write_text('[package]\nname = "broken"\nversion = "0.1.0"\n'
                                       'edition = "2021"\n')
    (broken / "src" / "main.rs").write_text('fn main() {\n    let n: u32 = "four";\n}\n')
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), f"""\
schedule: {{nightly: false}}
workers:
  local: {{kind: local, count: 2}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
  {OTHER_TARGET}: {{pool: local}}
projects:
  hello:
    source: file://{bare}
    branches: [main]
    poll_interval: 1
  broken:
    source: {broken}
    targets: [{HOST_TARGET}]
""")
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
    step_names = [s["name"] for s in git_farm.steps(build)]
    assert "package" not in step_names


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
