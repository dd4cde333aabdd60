"""ami/rustfarm-boot's own pieces, without Docker: its retries and back-off, and its
IMDSv2 client against the fake metadata service. ruff checks it and every other
Python program of ami/ (found by their shebang: they have no .py suffix, so the
repository-wide ruff run of tests/test_style.py does not see them)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.support.registry import free_port

from . import harness


def load_boot_program() -> types.ModuleType:
    """The boot program as a module (run as a program, it boots; imported, it does not)."""
    module = types.ModuleType("rustfarm_boot")
    module.__file__ = str(harness.BOOT_SCRIPT)
    exec(compile(harness.BOOT_SCRIPT.read_text(), module.__file__, "exec"), module.__dict__)
    return module


boot = load_boot_program()


def python_programs() -> list[Path]:
    return [path for path in sorted((harness.REPO_ROOT / "ami").iterdir())
            if path.is_file() and path.read_bytes().startswith(b"#!/usr/bin/python3")]


def test_the_python_programs_of_the_ami_pass_ruff():
    programs = python_programs()
    assert harness.BOOT_SCRIPT in programs
    ruff = Path(sys.executable).parent / "ruff"
    checked = subprocess.run([str(ruff), "check", *map(str, programs)], cwd=harness.REPO_ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("attempt, start, longest, delay", [
    (1, 2, 60, 2), (2, 2, 60, 4), (5, 2, 60, 32), (6, 2, 60, 60), (999999, 2, 60, 60),
    (3, 0, 0, 0), (1, 1, 2, 1), (2, 1, 2, 2), (3, 1, 2, 2),
])
def test_backoff_doubles_up_to_its_longest_wait(attempt, start, longest, delay):
    assert boot.backoff_delay(attempt, start, longest) == delay


class Attempts:
    """A step that fails with the given failures, then returns "done"."""

    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def retried(step, attempts: int = 4):
    lines, sleeps = [], []
    try:
        result = boot.with_retries("reading", attempts, step, lines.append, (2, 5), sleeps.append)
    except boot.StepFailed as failure:
        result = failure
    return result, lines, sleeps


def test_a_step_is_retried_with_backoff_until_it_succeeds():
    step = Attempts(boot.StepFailed("no"), boot.StepFailed("not yet"), boot.StepFailed("soon"))
    result, lines, sleeps = retried(step)
    assert result == "done" and step.calls == 4
    assert sleeps == [2, 4, 5]
    assert lines == ["reading failed (attempt 1 of 4): no", "retrying in 2s",
                     "reading failed (attempt 2 of 4): not yet", "retrying in 4s",
                     "reading failed (attempt 3 of 4): soon", "retrying in 5s"]


def test_the_last_failure_ends_the_retries_without_a_wait():
    result, lines, sleeps = retried(Attempts(*[boot.StepFailed(f"n{i}") for i in range(3)]), 3)
    assert str(result) == "n2" and sleeps == [2, 4]
    assert lines[-1] == "reading failed (attempt 3 of 3): n2"


def test_a_permanent_failure_is_not_retried():
    step = Attempts(boot.StepFailed("gone for good", permanent=True))
    result, lines, sleeps = retried(step)
    assert str(result) == "gone for good" and step.calls == 1 and sleeps == []


def test_imds_v2_token_then_user_data():
    with harness.FakeImds("#rustfarm-worker v1\n") as imds:
        assert boot.fetch_user_data(imds.url, 5) == b"#rustfarm-worker v1\n"
        assert imds.requests == [("PUT", "/latest/api/token", 200),
                                 ("GET", "/latest/user-data", 200)]


def test_imds_that_is_not_ready_fails_the_attempt_with_its_status():
    with harness.FakeImds("#rustfarm-worker v1\n", unready_requests=1) as imds:
        with pytest.raises(boot.StepFailed) as failed:
            boot.fetch_user_data(imds.url, 5)
        assert str(failed.value) == f"no IMDSv2 token from {imds.url}: HTTP 503"
        assert not failed.value.permanent
        assert boot.fetch_user_data(imds.url, 5) == b"#rustfarm-worker v1\n"


def test_an_instance_without_user_data_fails_for_good():
    with harness.FakeImds(None) as imds:
        with pytest.raises(boot.StepFailed) as failed:
            boot.fetch_user_data(imds.url, 5)
        assert str(failed.value) == "this instance has no user-data"
        assert failed.value.permanent


def test_a_dead_imds_is_a_failure_worth_retrying():
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(boot.StepFailed) as failed:
        boot.fetch_user_data(dead, 2)
    assert str(failed.value).startswith(f"no IMDSv2 token from {dead}: Failed to connect to ")
    assert not failed.value.permanent


def test_a_missing_user_data_parser_is_a_problem_of_the_user_data(tmp_path):
    settings, problems = boot.read_user_data(str(tmp_path / "none.py"), b"#rustfarm-worker v1\n")
    assert settings == {} and problems == [f"no user-data parser at {tmp_path / 'none.py'}"]
