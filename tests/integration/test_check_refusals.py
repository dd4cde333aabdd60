"""`farm check` on files that are not farm files, or would expose the farm: one line each."""

from __future__ import annotations

import pytest

from tests.support.farm import EXAMPLE, farm_command

BODY = f"""\
farm: {{name: x}}
workers: {{local: {{kind: local}}}}
targets: {{x86_64-unknown-linux-gnu: {{pool: local}}}}
projects: {{hello: {{source: {EXAMPLE}}}}}
"""


def check(config, command: str = "check") -> tuple[int, list[str]]:
    done = farm_command(config, command, check=False, timeout=60)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr.splitlines()


def test_binary_garbage(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_bytes(bytes(range(256)) * 16)
    assert check(config) == (2, ["farm.yaml: not a text file (it holds NUL bytes): farm.yaml is "
                                 "YAML text"])


def test_text_that_is_not_utf8(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_bytes(BODY.replace("name: x", "name: x, title: \xff").encode("latin-1"))
    assert check(config) == (2, ["farm.yaml:1: not UTF-8 text (byte 0xff): save farm.yaml as "
                                 "UTF-8"])


def test_an_alias_bomb(tmp_path):
    config = tmp_path / "farm.yaml"
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    config.write_text(BODY + "\n".join(lines) + "\n")
    code, lines = check(config)     # within check()'s 60 s: it took 40 s when it was parsed
    assert code == 2 and len(lines) == 1 and "a YAML alias bomb?" in lines[0]


def test_a_store_that_would_serve_the_whole_machine(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_text(BODY + "artifacts: {directory: /}\n")
    assert check(config) == (2, [
        "farm.yaml:5: artifacts.directory: / is a system directory: it is served to anyone "
        "without a login; give a directory of its own (default: artifacts, in the state "
        "directory)"])


@pytest.mark.parametrize("command", ["check", "up", "reload"])
def test_a_pool_too_small_for_its_builders(tmp_path, command):
    # 1,100 builders on one worker: a worker serves at most 1,000, so no build could start.
    # `farm up` and `farm reload` refuse what `farm check` refuses, with its line, and
    # start nothing: no state directory, so no master, worker or database.
    projects = "".join(f"  p{i:03d}: {{source: {EXAMPLE}}}\n" for i in range(1100))
    config = tmp_path / "farm.yaml"
    config.write_text(BODY.split("projects:")[0] + "projects:\n" + projects)
    assert check(config, command) == (1, [
        "farm: workers.local: 1100 builders need at least 2 workers "
        "(a worker serves at most 1000 builders; the pool has 1)"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["farm.yaml"]
