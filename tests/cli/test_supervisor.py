"""The supervisor of a farm of several masters: which master it takes for one that
stopped with the router, and what `farm status` shows of it."""

from __future__ import annotations

from rustfarm.cli.supervisor import Supervisor, master_stopped_running

RUNNING = "2026-01-01 10:00:00+0000 [-] BuildMaster is running\n"
STOPPED = ("2026-01-01 10:05:00+0000 [-] Guru meditation! We have been disconnected from "
           "wamp server\n2026-01-01 10:05:00+0000 [-] BuildMaster is stopped\n")


def test_a_master_whose_log_last_says_it_stopped_has_stopped_running(tmp_path):
    log = tmp_path / "twistd.log"
    log.write_text(RUNNING + STOPPED)
    assert master_stopped_running(log)


def test_a_master_whose_stop_hangs_after_losing_the_router_has_stopped_running(tmp_path):
    log = tmp_path / "twistd.log"
    log.write_text(RUNNING + STOPPED.splitlines(keepends=True)[0]
                   + "2026-01-01 10:05:01+0000 [-] Stopping container 5243e9...\n")
    assert master_stopped_running(log)


def test_a_master_started_again_runs(tmp_path):
    log = tmp_path / "twistd.log"
    log.write_text(RUNNING + STOPPED + "x" * 300_000 + "\n" + RUNNING)
    assert not master_stopped_running(log)


def test_a_master_still_starting_or_without_a_log_is_not_stopped(tmp_path):
    log = tmp_path / "twistd.log"
    assert not master_stopped_running(log)
    log.write_text("2026-01-01 10:00:00+0000 [-] Starting BuildMaster\n")
    assert not master_stopped_running(log)


def test_status_shows_the_supervisor_s_last_line(tmp_path):
    supervisor = Supervisor(tmp_path)
    assert supervisor.pid is None and supervisor.last_action() == ""
    supervisor.log.write_text("2026-01-01 10:00:00 watching the router and 2 master(s)\n"
                              "2026-01-01 10:05:02 the router runs again (pid 42)\n")
    assert supervisor.last_action() == "2026-01-01 10:05:02 the router runs again (pid 42)"
