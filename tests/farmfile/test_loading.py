"""farm.yaml loading: the default file, and every bad input with its promised message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rustfarm.farmfile import FarmFileError, load, loads

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
farm:
  name: demo
workers:
  local: {kind: local, count: 2}
targets:
  x86_64-unknown-linux-gnu: {pool: local, runner: native}
projects:
  hello:
    source: %(source)s
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        loads(textwrap.dedent(text), tmp_path / "farm.yaml")
    return [str(p) for p in caught.value.problems]


def good(tmp_path: Path, extra: str = "", source: str = "") -> str:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    return GOOD % {"source": source or src} + extra


def test_the_repository_farm_file_loads():
    farm = load(REPO / "farm.yaml")
    assert farm.farm.name == "rustfarm"
    assert farm.projects["hello"].source == str(REPO / "examples" / "hello")
    assert farm.farm.state_dir == REPO / ".farm"
    assert farm.db.url == f"sqlite:///{REPO / '.farm' / 'master' / 'state.sqlite'}"


def test_defaults_fill_what_is_left_out(tmp_path):
    farm = loads(good(tmp_path), tmp_path / "farm.yaml")
    project = farm.projects["hello"]
    assert project.targets == ("x86_64-unknown-linux-gnu",)
    assert project.binaries == ()      # those cargo reports building
    assert project.branches == ("main",)
    assert (project.profile, project.test, project.poll_interval) == ("release", True, 60)
    assert farm.www.port == 8010 and farm.www.host == "127.0.0.1"
    assert farm.farm.url == "http://127.0.0.1:8010/"
    assert farm.schedule.nightly == (3, 0)
    assert farm.artifacts.keep == 5
    assert farm.pools["local"].worker_names() == ("local-1", "local-2")


def test_values_are_immutable(tmp_path):
    farm = loads(good(tmp_path), tmp_path / "farm.yaml")
    with pytest.raises(AttributeError):
        farm.projects["hello"].profile = "dev"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    found = problems(tmp_path, "farm:\n  name: [demo\nworkers: {}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'farm.yaml'}:")
    assert "YAML syntax error" in found[0]


def test_unknown_key_suggests_the_right_one(tmp_path):
    found = problems(tmp_path, good(tmp_path).replace("  name: demo", "  name: demo\n  titel: x"))
    assert found == [f"{tmp_path / 'farm.yaml'}:3: farm.titel: unknown key (did you mean 'title'?)"]


def test_unknown_key_in_a_project(tmp_path):
    found = problems(tmp_path, good(tmp_path, "    targts: [x86_64-unknown-linux-gnu]\n"))
    assert found == [f"{tmp_path / 'farm.yaml'}:10: projects.hello.targts: unknown key "
                     "(did you mean 'targets'?)"]


def test_missing_required_keys(tmp_path):
    found = problems(tmp_path, "farm: {name: demo}\nworkers:\n  local: {count: 1}\n"
                               "targets:\n  x86_64-unknown-linux-gnu: {}\nprojects:\n  p: {}\n")
    assert any(":3: workers.local.kind: missing required key" in p for p in found)
    assert any(":5: targets.x86_64-unknown-linux-gnu.pool: missing required key" in p for p in found)
    assert any(":7: projects.p.source: missing required key" in p for p in found)


def test_wrong_types(tmp_path):
    found = problems(tmp_path, good(tmp_path, "    test: 3\n    poll_interval: soon\n"
                                              "www:\n  port: eighty\n"))
    assert any(":10: projects.hello.test: must be true or false, not a whole number" in p
               for p in found)
    assert any(":11: projects.hello.poll_interval: must be a whole number, not text" in p
               for p in found)
    assert any(":13: www.port: must be a whole number, not text" in p for p in found)


def test_duplicate_names(tmp_path):
    text = good(tmp_path) + f"  hello:\n    source: {tmp_path}\n"
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path / 'farm.yaml'}:10: projects.hello: duplicate key 'hello' "
                     "(first defined on line 8)"]


def test_target_with_undefined_pool(tmp_path):
    text = good(tmp_path).replace("{pool: local, runner: native}", "{pool: dockr}")
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path / 'farm.yaml'}:6: targets.x86_64-unknown-linux-gnu.pool: "
                     "no worker pool 'dockr' is defined under workers (defined: local)"]


def test_project_with_undefined_target(tmp_path):
    found = problems(tmp_path, good(tmp_path, "    targets:\n      - x86_64-unknown-linux-gnu\n"
                                              "      - mipsel-unknown-linux-gnu\n"))
    assert found == [f"{tmp_path / 'farm.yaml'}:12: projects.hello.targets[1]: target "
                     "'mipsel-unknown-linux-gnu' is not defined under targets"]


def test_unknown_target_triple_suggests_and_lists(tmp_path):
    text = good(tmp_path).replace("x86_64-unknown-linux-gnu:", "mipsel-unknown-linux-gn:")
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'farm.yaml'}:6: targets.mipsel-unknown-linux-gn: "
                               "unknown target triple (did you mean 'mipsel-unknown-linux-gnu'?)")
    assert "mips64el-unknown-linux-gnuabi64" in found[0]     # the farm's known targets are listed


def test_unknown_pool_kind(tmp_path):
    found = problems(tmp_path, good(tmp_path).replace("kind: local", "kind: lokal"))
    assert found == [f"{tmp_path / 'farm.yaml'}:4: workers.local.kind: unknown pool kind 'lokal' "
                     "(did you mean 'local'?); kinds: local, docker, ec2"]


def test_missing_source_directory(tmp_path):
    found = problems(tmp_path, good(tmp_path, source="no/such/dir"))
    assert found == [f"{tmp_path / 'farm.yaml'}:9: projects.hello.source: no such directory: "
                     f"{tmp_path / 'no/such/dir'} (give a git URL, a file:// URL or a local path)"]


def test_several_problems_are_all_reported_in_line_order(tmp_path):
    text = good(tmp_path, "    test: maybe\n").replace("  name: demo", "  name: Demo!")
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert ":2: farm.name:" in found[0] and ":10: projects.hello.test:" in found[1]


def test_docker_target_needs_an_image(tmp_path):
    text = good(tmp_path).replace("kind: local, count: 2", "kind: docker, count: 2")
    found = problems(tmp_path, text)
    assert any("targets.x86_64-unknown-linux-gnu.image: pool 'local' runs containers" in p
               for p in found)


def test_postgresql_accepted_and_other_databases_refused(tmp_path):
    farm = loads(good(tmp_path, "db:\n  url: postgresql://farm@localhost/farm\n"),
                 tmp_path / "farm.yaml")
    assert farm.db.url == "postgresql://farm@localhost/farm"
    found = problems(tmp_path, good(tmp_path, "db:\n  url: mysql://x/y\n"))
    assert found == [f"{tmp_path / 'farm.yaml'}:11: db.url: must be a sqlite:/// or "
                     "postgresql:// URL"]


def test_unreadable_file(tmp_path):
    with pytest.raises(FarmFileError) as caught:
        load(tmp_path / "missing.yaml")
    assert "cannot read" in str(caught.value)
