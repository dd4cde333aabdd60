"""The login throttle's arithmetic, on a clock the test moves (tests/integration/
test_web_hardening.py checks it over HTTP against a real master)."""

from __future__ import annotations

from master import auth
from master.auth import LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: LoginThrottle, times: int, user: str = "admin", address: str = "10.0.0.1"):
    for _ in range(times):
        throttle.failed(user, address)


def test_lockout_starts_at_the_fifth_failure_and_doubles_up_to_five_minutes():
    clock = Clock()
    throttle = LoginThrottle(clock)
    fail(throttle, 4)
    assert throttle.wait("admin", "10.0.0.1") == 0
    waits = []
    for _ in range(12):
        fail(throttle, 1)
        waits.append(throttle.wait("admin", "10.0.0.1"))
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_a_success_ends_the_users_lockout_only():
    throttle = LoginThrottle(Clock())
    fail(throttle, 5)
    fail(throttle, 5, user="ops")
    throttle.succeeded("admin", "10.0.0.1")
    assert throttle.wait("admin", "10.0.0.1") == 0
    assert throttle.wait("ops", "10.0.0.1") == 1


def test_the_address_is_locked_after_twenty_failures_for_any_users():
    throttle = LoginThrottle(Clock())
    for user in ("a", "b", "c", "d"):
        fail(throttle, 5, user=user)
    assert throttle.wait("admin", "10.0.0.1") == 1
    assert throttle.wait("admin", "10.0.0.2") == 0


def test_old_failures_are_forgotten():
    clock = Clock()
    throttle = LoginThrottle(clock)
    fail(throttle, 4)
    clock.now += auth.FORGET_AFTER + 1
    fail(throttle, 1)
    assert throttle.wait("admin", "10.0.0.1") == 0


def test_records_stay_bounded(monkeypatch):
    monkeypatch.setattr(auth, "_MAX_RECORDS", 100)
    throttle = LoginThrottle(Clock())
    for n in range(1000):
        throttle.failed("admin", f"10.0.{n // 256}.{n % 256}")
    assert len(throttle.records) <= 100
