"""A pull request's builds live beside a project's releases, under pr-<number>/, and are
never one: not listed, not the latest, not counted or removed by pruning."""

from __future__ import annotations

import os

from rustfarm.master.releases import latest_complete, releases
from rustfarm.master.steps import prune_revisions

TARGET = "mipsel-unknown-linux-musl"


def archive(project_dir, label: str, when: int) -> None:
    place = project_dir / label / TARGET
    place.mkdir(parents=True)
    path = place / f"hello-{label}-{TARGET}.tar.gz"
    path.write_bytes(b"archive")
    (place / "SHA256SUMS").write_text(f"{'0' * 64}  {path.name}\n")
    os.utime(path, (when, when))


def test_a_pull_request_s_builds_are_no_release(tmp_path):
    project = tmp_path / "hello"
    archive(project, "3b617a36869c", 1_700_000_000)
    archive(project, "pr-7", 1_800_000_000)
    assert [r.revision for r in releases(project)] == ["3b617a36869c"]
    assert latest_complete(project, [TARGET]).revision == "3b617a36869c"


def test_pruning_keeps_a_pull_request_s_builds(tmp_path):
    project = tmp_path / "hello"
    for when, label in enumerate(["000000000001", "000000000002", "000000000003"]):
        archive(project, label, 1_700_000_000 + when)
    archive(project, "pr-7", 1_600_000_000)
    assert prune_revisions(project, 1, None) == ["000000000002", "000000000001"]
    assert sorted(p.name for p in project.iterdir()) == ["000000000003", "pr-7"]
