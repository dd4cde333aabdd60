"""Source snapshots made on the master, from git repositories and plain directories."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from rustfarm.farmfile import Project
from rustfarm.master.snapshots import SnapshotError, make_snapshot


def project(source: str, **overrides) -> Project:
    values = dict(name="demo", source=source, subdir="", branches=("main",), poll_interval=0,
                  targets=(), profile="release", features=(), test=True, binaries=("demo",))
    values.update(overrides)
    return Project(**values)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.invalid")
    git(work, "config", "user.name", "t")
    (work / "a.txt").write_text("one\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "one")
    return work


def names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {m.name for m in tar.getmembers()}


def test_git_snapshot_of_branch_head_and_of_a_revision(tmp_path, repo):
    first = git(repo, "rev-parse", "HEAD")
    (repo / "b.txt").write_text("two\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "two")
    head = git(repo, "rev-parse", "HEAD")
    p = project(str(repo))
    snap = make_snapshot(p, None, "main", tmp_path / "src", tmp_path / "snaps")
    assert snap.revision == head and snap.label == head[:12]
    assert {"a.txt", "b.txt"} <= names(snap.path)
    old = make_snapshot(p, first, None, tmp_path / "src", tmp_path / "snaps")
    assert old.revision == first and "b.txt" not in names(old.path)
    again = make_snapshot(p, first, None, tmp_path / "src", tmp_path / "snaps")
    assert "already made" in again.log


def test_unknown_revision_is_a_clear_error(tmp_path, repo):
    with pytest.raises(SnapshotError, match="revision deadbeef not found in"):
        make_snapshot(project(str(repo)), "deadbeef", None, tmp_path / "src", tmp_path / "snaps")
    with pytest.raises(SnapshotError, match="branch nope not found"):
        make_snapshot(project(str(repo)), None, "nope", tmp_path / "src", tmp_path / "snaps")


def test_directory_snapshot_skips_build_output_and_hashes_content(tmp_path):
    source = tmp_path / "plain"
    (source / "src").mkdir(parents=True)
    (source / "target" / "debug").mkdir(parents=True)
    (source / "src" / "main.rs").write_text("fn main() {}\n")
    (source / "target" / "debug" / "junk").write_text("x")
    p = project(str(source))
    first = make_snapshot(p, None, None, tmp_path / "s", tmp_path / "snaps")
    assert names(first.path) == {"src/main.rs"}
    same = make_snapshot(p, None, None, tmp_path / "s", tmp_path / "snaps")
    assert same.revision == first.revision
    (source / "src" / "main.rs").write_text("fn main() { println!(); }\n")
    changed = make_snapshot(p, None, None, tmp_path / "s", tmp_path / "snaps")
    assert changed.revision != first.revision
    with pytest.raises(SnapshotError, match="plain directory"):
        make_snapshot(p, "abc", None, tmp_path / "s", tmp_path / "snaps")
