"""The farm containers this test run made, told apart from any an earlier run left.

A run that is killed (a machine restart, a timeout) can leave a container behind
on the engine; later runs must neither count it as their own leak nor remove a
container that may belong to somebody's running farm. The containers present
when the engine is first used are noted and left out; the run's summary names
them so they can be removed by hand.
"""

from __future__ import annotations

import subprocess

_before: set[str] | None = None


def _listed() -> dict[str, str]:
    """Every container on the engine, id to name."""
    out = subprocess.run(["docker", "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def note_existing() -> None:
    """Remember the containers already there; the first call of a run counts."""
    global _before
    if _before is None:
        _before = set(_listed())


def left_before() -> list[str]:
    """Names of the farm containers that were there before this run used the engine."""
    if not _before:
        return []
    names = _listed()
    return sorted(names[cid] for cid in _before
                  if cid in names and names[cid].startswith("buildbot-"))


def pool_container_ids(pool: str) -> dict[str, str]:
    """This run's containers of a docker pool, id to name (buildbot-<pool>-<n>-<master>).
    A worker's container has the same name every time it starts, so telling a new
    container from one that is still being removed takes its id."""
    before = _before or set()
    return {cid: name for cid, name in _listed().items()
            if cid not in before and name.startswith(f"buildbot-{pool}-")}


def pool_containers(pool: str) -> list[str]:
    """Names of this run's containers of a docker pool."""
    return sorted(pool_container_ids(pool).values())
