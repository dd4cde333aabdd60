"""The farm's builds: Buildbot's Build, keeping a stop's RETRY.

When the master shuts down, Buildbot stops running builds with RETRY so their
requests are built again after the next start; but the interrupted step then
reports CANCELLED, which outranks RETRY, and the request is dropped. A build
stopped to be retried stays RETRY here.
"""

from __future__ import annotations

from buildbot.process.build import Build
from buildbot.process.results import CANCELLED, RETRY
from twisted.internet import defer


class FarmBuild(Build):
    _stopped_for = None

    def stopBuild(self, reason="<no reason given>", results=CANCELLED):
        if not self.finished:
            self._stopped_for = results
        return super().stopBuild(reason, results)

    @defer.inlineCallbacks
    def stepDone(self, results, step):
        terminate = yield super().stepDone(results, step)
        if self._stopped_for == RETRY:
            self.results = RETRY
        return terminate
