"""Buildbot's build records, as its REST and data APIs give them (dicts)."""

from __future__ import annotations

# Buildbot's result of a build that will be run again (buildbot.process.results.RETRY).
RETRY = 5


def newest(builds: list[dict]) -> dict | None:
    """A build request's newest build: a retried request has several, and the database
    gives them in no fixed order (a build retried after its master died is written
    after its successor)."""
    return max(builds, key=lambda build: build["buildid"], default=None)


def has_ended(build: dict | None) -> bool:
    """Whether a build ended for good (not to be retried)."""
    return build is not None and bool(build["complete"]) and build["results"] != RETRY
