"""Standby containers: a builder's next build starts in a container already running.

Every build runs in a fresh container, and starting one (the engine's start, the
worker's Python, its connection to the master) is most of the time between a
forced build and its first step. So once a build's container is stopped, its
worker starts another for the same builder (the same image and volumes) that
waits, never used, for that builder's next build. It waits ``standby`` seconds
of the pool (farm.yaml) and is then stopped; a build of another builder that
finds no other free worker replaces it (stopped, and its own started); an
uploaded project's build (a volume of its own) starts none.

This is Buildbot's latent worker substantiated ahead of a build: the container
is started as for the finished build (its rendered worker properties), and a
build takes it only when its own rendered properties are the same
(:class:`StandbyMixin`). :class:`StandbyFirst` is the builders' ``nextWorker``
that sends a build to its builder's standby first, then to a worker with none.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from buildbot.worker.latent import States
from twisted.internet import defer
from twisted.python import log

# After a container stops, how long a waiting build has to claim its worker before a
# standby is started (a standby another builder's build replaces is a wasted start).
STANDBY_DELAY = 1.0


@dataclass(frozen=True)
class Standby:
    """A container to start with no build: the builder it waits for and the worker
    properties (Buildbot's renderWorkerProps) of that builder's last build."""

    builder: str
    props: Any


class StandbyMixin:
    """For a latent worker with Buildbot's CompatibleLatentWorkerMixin and the farm's
    LatentWorkerPrivates (before them in the bases): ``standby`` seconds (0: none) that a
    container started after a build waits for its builder's next one. The subclass
    starts a :class:`Standby` in ``start_instance`` from its props, and says in
    ``standby_allowed`` whether the build that just finished may have one (not an
    upload's)."""

    standby = 0
    _standby: Standby | None = None         # waiting, or starting, for a build
    _next_standby: Standby | None = None    # to start once this container is stopped
    _standby_call = None                    # the delayed start

    def standby_of(self) -> str | None:
        """The builder whose next build this worker's container waits for, if any."""
        return self._standby.builder if self._standby is not None else None

    def standby_allowed(self, wfb) -> bool:
        return True

    def buildFinished(self, wfb):
        props = self.rendered_worker_props
        if self.standby > 0 and props is not None and self.standby_allowed(wfb):
            # Buildbot's own copy, never changed: a stop drops it rather than clearing it.
            self._next_standby = Standby(wfb.builder_name, props)
        return super().buildFinished(wfb)

    @defer.inlineCallbacks
    def insubstantiate(self, fast=False, force_substantiation_build=None):
        self._standby = None
        following, self._next_standby = self._next_standby, None
        yield super().insubstantiate(fast, force_substantiation_build)
        if following is not None and force_substantiation_build is None and self.running:
            self._cancel_standby_call()
            self._standby_call = self.master.reactor.callLater(
                STANDBY_DELAY, self._start_standby, following)

    def _start_standby(self, standby: Standby) -> None:
        self._standby_call = None
        # A build claimed the worker meanwhile, or the master is stopping.
        if self.state != States.NOT_SUBSTANTIATED or self.building or not self.running:
            return
        log.msg(f"{self.name}: starting a standby container for {standby.builder}'s next "
                f"build")
        self._standby = standby
        started = self.substantiate(None, standby)
        started.addErrback(lambda failure: log.msg(
            f"{self.name}: the standby container for {standby.builder} did not start: "
            f"{failure.getErrorMessage()}"))

    def _cancel_standby_call(self) -> None:
        if self._standby_call is not None and self._standby_call.active():
            self._standby_call.cancel()
        self._standby_call = None

    def isCompatibleWithBuild(self, build_props):
        # Any build may take a standby: one it does not fit is replaced (substantiate).
        if self._standby is not None:
            return defer.succeed(True)
        return super().isCompatibleWithBuild(build_props)

    def substantiate(self, wfb, build):
        standby = self._standby
        if build is None or isinstance(build, Standby) or standby is None:
            return super().substantiate(wfb, build)
        self._standby = None
        return self._take_standby(wfb, build, standby)

    @defer.inlineCallbacks
    def _take_standby(self, wfb, build, standby: Standby):
        wanted = yield self.renderWorkerProps(build)
        if wanted == standby.props:
            log.msg(f"{self.name}: build of {wfb.builder_name} takes the standby container")
        else:
            log.msg(f"{self.name}: the standby container waits for {standby.builder}; "
                    f"replacing it for {wfb.builder_name}'s build")
            yield self.insubstantiate()
        return (yield super().substantiate(wfb, build))

    @defer.inlineCallbacks
    def attached(self, conn):
        yield super().attached(conn)
        if self._standby is not None and not self.building:
            # Waits for its builder's build; buildStarted clears the timer.
            self.clear_build_wait_timer()
            self.build_wait_timer = self.master.reactor.callLater(
                self.standby, self._standby_expired)

    def _standby_expired(self) -> None:
        self.build_wait_timer = None
        if self._standby is not None and not self.building:
            log.msg(f"{self.name}: no build of {self._standby.builder} came within "
                    f"{self.standby} s; stopping its standby container")
            self.disconnect_soon()

    def stopService(self):
        self._cancel_standby_call()
        self._next_standby = None
        return super().stopService()


def standby_of(wfb) -> str | None:
    worker = getattr(wfb, "worker", None)
    return worker.standby_of() if isinstance(worker, StandbyMixin) else None


@dataclass(frozen=True)
class StandbyFirst:
    """Buildbot's ``nextWorker`` for the builders of a pool with standby containers:
    the worker whose standby waits for this builder, else one with no standby, else
    (every free worker waits for another builder) any, whose standby is replaced.
    ``then`` chooses among those (the pool's own chooser, or at random)."""

    then: Any = None

    def __call__(self, builder, workers, request):
        if not workers:
            return None
        waiting = [w for w in workers if standby_of(w) == builder.name]
        if waiting:
            return waiting[0]
        free = [w for w in workers if standby_of(w) is None] or workers
        if self.then is not None:
            return self.then(builder, free, request)
        return random.choice(free)
