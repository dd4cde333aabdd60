"""`farm build --wait` prints each step's own duration, not the difference of
Buildbot's whole-second timestamps (which made every short step "0.0 s")."""

from __future__ import annotations

import re

from rustfarm.cli.build_command import step_seconds

from .conftest import HOST_TARGET


def test_build_wait_prints_the_steps_measured_durations(example_farm):
    done = example_farm.farm("build", "hello", "--target", HOST_TARGET, "--wait")
    printed = {m.group(1): float(m.group(2)) for m in re.finditer(
        rf"hello:{HOST_TARGET}:   (.+?): \w+ \(.*, (\d+\.\d) s\)", done.stdout)}
    assert "cargo build" in printed and "fetch source" in printed, done.stdout
    build = example_farm.api("builds", property="step_durations")["builds"][-1]
    measured = build["properties"]["step_durations"][0]
    steps = {s["name"]: s for s in example_farm.steps(build)}
    timed = {name: measured[str(s["number"])] for name, s in steps.items()
             if str(s["number"]) in measured}
    assert {"fetch source", "toolchain", "cargo build", "package"} <= set(timed), measured
    for name, seconds in timed.items():
        assert printed[name] == round(seconds, 1), (name, done.stdout)
    # Sub-second steps are measured, not rounded to whole seconds.
    assert any(0 < seconds < 1 and seconds != steps[name]["complete_at"] - steps[name]["started_at"]
               for name, seconds in timed.items()), measured


def test_a_step_the_build_did_not_time_falls_back_to_whole_seconds():
    step = {"number": 0, "started_at": 10, "complete_at": 12}
    assert step_seconds(step, {"1": 0.25}, build_complete=False) == 2.0
    assert step_seconds(step, {}, build_complete=False) is None
    assert step_seconds(step, {}, build_complete=True) == 2.0
    assert step_seconds({**step, "number": 1}, {"1": 0.25}, build_complete=False) == 0.25
