"""How a compile job follows its buildset (master/compile_jobs.py), against a stand-in
for Buildbot's data API: the request's newest build decides its target's result,
whatever order the database returns builds in; a read that fails is tried again;
and a job's record reads back as the job."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from twisted.internet import defer

from rustfarm.master.compile_jobs import CompileJobs, Job, TargetResult

TARGET = "mips-unknown-linux-musl"
ENDED = datetime(2026, 12, 7, 21, 0, tzinfo=timezone.utc)


class FakeData:
    """Buildbot's ``master.data.get`` for one buildset of one request; ``failures``
    reads fail first, as while the database restarts."""

    def __init__(self, builds: list[dict], failures: int = 0):
        self.builds, self.failures = builds, failures

    def get(self, path, filters=None):
        if self.failures:
            self.failures -= 1
            return defer.fail(ConnectionError("the database is away"))
        answers = {("buildsets", 5): {"complete": True, "complete_at": ENDED},
                   ("buildrequests",): [{"buildrequestid": 7, "builderid": 3}],
                   ("buildrequests", 7, "builds"): self.builds}
        return defer.succeed(answers[tuple(path)])


def service(data: FakeData) -> CompileJobs:
    jobs = CompileJobs(None, None, "http://farm/")
    jobs.parent = SimpleNamespace(master=SimpleNamespace(
        data=data, reactor=SimpleNamespace(seconds=lambda: ENDED.timestamp() + 1),
        botmaster=SimpleNamespace(getBuilderById=lambda i: SimpleNamespace(
            name=f"compile:{TARGET}"))))
    jobs.url = "http://farm/"
    return jobs


def job(tmp_path) -> Job:
    return Job("0123456789abcdef", "admin", "hello", [TARGET], tmp_path, 1.0, bsid=5,
               results={TARGET: TargetResult(TARGET)})


def build(buildid: int, results: int) -> dict:
    return {"buildid": buildid, "builderid": 3, "number": buildid, "complete": True,
            "results": results}


def test_the_newest_build_of_a_retried_request_decides_however_they_are_listed(tmp_path):
    # The retried build (5) was rewritten after its successor, so it is listed last.
    followed = job(tmp_path)
    service(FakeData([build(60, 0), build(19, 5)])).update(followed)
    assert followed.done and followed.succeeded
    assert followed.results[TARGET].result == "success"
    assert followed.ended == ENDED.timestamp()


def test_a_failed_read_is_tried_again_at_the_next_round(tmp_path):
    followed, data = job(tmp_path), FakeData([build(60, 0)], failures=1)
    jobs = service(data)
    jobs.keep_updating(followed)
    assert not followed.done
    jobs.keep_updating(followed)
    assert followed.succeeded


def test_a_job_s_record_reads_back_as_the_job(tmp_path):
    taken = job(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(taken.record()))
    read = Job.from_record(tmp_path)
    assert (read.id, read.user, read.crate, read.targets, read.bsid, read.created) == \
        (taken.id, "admin", "hello", [TARGET], 5, 1.0)
    assert read.results[TARGET].result == "queued" and not read.done
    (tmp_path / "job.json").write_text("{not json")
    assert Job.from_record(tmp_path) is None
