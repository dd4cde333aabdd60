"""What a check run says at each of a build's events, from the report's build as
Buildbot gives it: a request waiting (or cancelled before it ran), a build running,
and its end with a conclusion GitHub knows."""

from __future__ import annotations

import datetime

import pytest
from buildbot.process.results import (CANCELLED, EXCEPTION, FAILURE, RETRY, SKIPPED, SUCCESS,
                                      WARNINGS)

from rustfarm.master.check_runs import check_run_fields

URL = "http://farm.example.com/#/builders/3/builds/7"
STARTED = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def request(results=None) -> dict:
    return {"builder": {"name": "hello:x86_64-unknown-linux-gnu"}, "results": results,
            "complete": results is not None, "url": "http://farm.example.com/#/buildrequests/9"}


def build(results=None, **more) -> dict:
    return {**request(results), "buildid": 7, "url": URL, "started_at": STARTED,
            "complete_at": STARTED + datetime.timedelta(seconds=30) if results is not None
            else None, "state_string": "build successful", "properties": {}, **more}


def test_a_request_is_queued_until_it_runs_or_is_cancelled():
    assert check_run_fields(request())["status"] == "queued"
    cancelled = check_run_fields(request(CANCELLED))
    assert (cancelled["status"], cancelled["conclusion"]) == ("completed", "cancelled")
    # A build retried waits for a worker again.
    assert check_run_fields(build(RETRY))["status"] == "queued"


def test_a_running_build_is_in_progress_since_it_started():
    fields = check_run_fields(build())
    assert (fields["status"], fields["started_at"]) == ("in_progress", "2026-01-02T03:04:05Z")
    assert "conclusion" not in fields and URL in fields["output"]["summary"]


@pytest.mark.parametrize("results, conclusion", [
    (SUCCESS, "success"), (WARNINGS, "success"), (FAILURE, "failure"), (SKIPPED, "skipped"),
    (EXCEPTION, "failure"), (CANCELLED, "cancelled")])
def test_an_ended_build_s_conclusion(results, conclusion):
    fields = check_run_fields(build(results))
    assert (fields["status"], fields["conclusion"], fields["completed_at"]) == \
        ("completed", conclusion, "2026-01-02T03:04:35Z")


def test_a_failure_s_output_names_the_failed_step_and_the_first_error():
    steps = [{"name": "fetch", "results": SUCCESS, "state_string": "fetched"},
             {"name": "cargo build", "results": FAILURE,
              "state_string": "compile failed: 1 error"}]
    fields = check_run_fields(build(FAILURE, steps=steps, state_string="failed cargo build",
                                    properties={"first_error": ["error[E0308]: x", "Cargo"]}))
    assert fields["output"]["title"] == "failed cargo build"
    summary = fields["output"]["summary"]
    assert "Failed step: `cargo build` (compile failed: 1 error)" in summary
    assert "```\nerror[E0308]: x\n```" in summary and URL in summary
