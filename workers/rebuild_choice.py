"""Where a release's rebuild (`farm verify-build`) runs: on another worker than the one
that built the release, so that a reproduction shows more than one worker giving the
same binaries twice.

The verify scheduler names, in the rebuild's request, the worker that built each
target's release (its provenance says; master/release_workers.py).
:class:`ElsewhereFirst`, every builder's ``nextWorker``, leaves that worker out while
another of the builder's workers is free, and lets the request wait while the others
are all busy (each is free again when its build ends). When no other can take it (the
builder has one worker, or the others are disconnected or refused by their engine) the
rebuild runs on the release's own worker, and its outcome says so. Every other request
goes to the pool's own chooser (``then``), or to a free worker at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from rustfarm.names import release_workers


def _name(wfb) -> str | None:
    return getattr(getattr(wfb, "worker", None), "workername", None)


def _building(wfb) -> bool:
    """Whether the worker is starting or running a build, of any builder."""
    worker = getattr(wfb, "worker", None)
    if worker is None:
        return False
    return any(w.isBusy() for w in worker.workerforbuilders.values())


def rebuild_candidates(builder, workers: list, request) -> list:
    """The free ``workers`` a request may go to: for a rebuild, those other than the
    release's worker; none while the others are busy; else all."""
    original = release_workers(getattr(request, "properties", None)).get(builder.name)
    if original is None:
        return workers
    others = [w for w in workers if _name(w) != original]
    if others:
        return others
    if any(_name(w) != original and _building(w) for w in builder.workers):
        return []
    return workers


@dataclass(frozen=True)
class ElsewhereFirst:
    """Buildbot's ``nextWorker`` for every builder (see the module); ``then`` chooses
    among the candidates."""

    then: Any = None

    def __call__(self, builder, workers, request):
        candidates = rebuild_candidates(builder, workers, request) if workers else []
        if not candidates:
            return None
        if self.then is not None:
            return self.then(builder, candidates, request)
        return random.choice(candidates)
