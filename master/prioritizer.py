"""The order in which the master offers workers to builders, from one query.

Whenever a worker frees up, connects, or a request arrives, Buildbot's build
request distributor sorts the builders concerned by their waiting requests.
Its default sorter asks the database twice per builder (the highest priority
and the oldest unclaimed request), then every builder is visited and asked once
more: about 3,300 queries each time for 1,100 builders on one worker, which
kept a forced build waiting for minutes. Here one query lists every unclaimed
request, and its summary is kept until a build request changes (Buildbot
announces each one new, claimed, unclaimed or complete) or a master stops.
Builders with nothing waiting are left out of the list, which
``prioritizeBuilders`` may do: they have nothing to start. The order is
Buildbot's own: highest priority first, then the oldest request, then the name.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime

from twisted.internet import defer


@dataclass(frozen=True)
class Waiting:
    """What a builder has waiting: its highest priority and its oldest request."""

    priority: int
    oldest: datetime


class UnclaimedRequests:
    """The master's unclaimed build requests by builder id, cached until one changes."""

    def __init__(self, master):
        self.master = master
        self.changes = 0
        self.cached: dict[int, Waiting] | None = None
        self.watching: defer.Deferred | None = None

    def watch(self) -> defer.Deferred:
        if self.watching is None:
            self.watching = defer.ensureDeferred(self._start_consuming())
        return self.watching

    async def _start_consuming(self) -> None:
        await self.master.mq.startConsuming(self.changed, ("buildrequests", None, None))
        # A master that stops or expires has its requests unclaimed without a buildrequests
        # message; its own "stopped" message follows.
        await self.master.mq.startConsuming(self.changed, ("masters", None, None))

    def changed(self, key, message) -> None:
        self.changes += 1
        self.cached = None

    @defer.inlineCallbacks
    def by_builder(self):
        yield self.watch()
        if self.cached is not None:
            return self.cached
        seen = self.changes
        found: dict[int, Waiting] = {}
        for request in (yield self.master.db.buildrequests.getBuildRequests(claimed=False)):
            known = found.get(request.builderid)
            if known is None:
                found[request.builderid] = Waiting(request.priority, request.submitted_at)
            else:
                found[request.builderid] = Waiting(max(known.priority, request.priority),
                                                   min(known.oldest, request.submitted_at))
        if seen == self.changes:      # no request changed while we asked
            self.cached = found
        return found


_per_master: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def unclaimed_requests(master) -> UnclaimedRequests:
    """One cache per master, surviving reconfigurations (which call this again)."""
    found = _per_master.get(master)
    if found is None:
        found = _per_master[master] = UnclaimedRequests(master)
    return found


@defer.inlineCallbacks
def prioritize_builders(master, builders):
    """Buildbot's ``prioritizeBuilders``: the builders with requests waiting, in order."""
    waiting = yield unclaimed_requests(master).by_builder()
    offered = {id(builder) for builder in builders}
    ready = []
    for builderid, what in waiting.items():
        builder = master.botmaster.getBuilderById(builderid)
        if builder is not None and id(builder) in offered:
            ready.append((-what.priority, what.oldest, builder.name, builder))
    ready.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in ready]
