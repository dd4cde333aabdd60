"""The farm's builds: Buildbot's Build, keeping a stop's RETRY and timing its steps.

When the master shuts down, Buildbot stops running builds with RETRY so their
requests are built again after the next start; but the interrupted step then
reports CANCELLED, which outranks RETRY, and the request is dropped. A build
stopped to be retried stays RETRY here.

A build request cancelled while a build for it starts (claimed, not yet
preparing its worker) makes Buildbot stop that build and return from its start
without finishing it: the build would never end, its worker would stay busy and
the master could not shut down cleanly. Such a build is finished here, CANCELLED.

Buildbot keeps a step's start and end in whole seconds, so a step of 0.3 s
shows 0 s or 1 s; each step's own duration is kept in the build's
``step_durations`` property as it ends (what `farm build --wait` prints).
"""

from __future__ import annotations

from buildbot.process.results import CANCELLED, RETRY
from twisted.internet import defer

from rustfarm.names import STEP_DURATIONS_PROPERTY
from rustfarm.workers.buildbot_private import BuildPrivates


class FarmBuild(BuildPrivates):
    _stopped_for = None
    _step_started: dict | None = None

    @defer.inlineCallbacks
    def startBuild(self, workerforbuilder):
        yield super().startBuild(workerforbuilder)
        if self.stopped and not self.finished and not self.preparation_started:
            yield self.buildFinished(["cancelled", f"({self.stopped_reason})"], CANCELLED)

    def getNextStep(self):
        step = super().getNextStep()
        if step is not None:
            if self._step_started is None:
                self._step_started = {}
            self._step_started[id(step)] = self.master.reactor.seconds()
        return step

    def stopBuild(self, reason="<no reason given>", results=CANCELLED):
        if not self.finished:
            self._stopped_for = results
        return super().stopBuild(reason, results)

    @defer.inlineCallbacks
    def stepDone(self, results, step):
        yield self.record_duration(step)
        terminate = yield super().stepDone(results, step)
        if self._stopped_for == RETRY:
            self.results = RETRY
        return terminate

    @defer.inlineCallbacks
    def record_duration(self, step):
        started = (self._step_started or {}).pop(id(step), None)
        number = getattr(step, "number", None)
        if started is None or number is None:
            return
        durations = dict(self.getProperty(STEP_DURATIONS_PROPERTY) or {})
        durations[str(number)] = round(self.master.reactor.seconds() - started, 3)
        self.setProperty(STEP_DURATIONS_PROPERTY, durations, "FarmBuild")
        # Published now, not at the next step's end: `farm build --wait` is waiting.
        yield self.master.data.updates.setBuildProperty(
            self.buildid, STEP_DURATIONS_PROPERTY, durations, "FarmBuild")
