"""Each master of a multi-master farm watches the others: one that stops beating is
declared dead after farm.yaml's ``failover.master_timeout``, so its builds are retried
on the masters that are left within a minute instead of Buildbot's ten.

Buildbot already has the pieces: every master refreshes its ``last_active`` in the
shared database (``masterActive``, each minute) and ``expireMasters`` deactivates those
silent for ten minutes; ``masterStopped`` deactivates one and does its housekeeping
(its unfinished builds end RETRY, its workers, schedulers and change sources are let
go, its build requests are unclaimed). This service beats more often and calls
``masterStopped`` sooner, then finishes what that housekeeping leaves when it runs for
another master: the dead one's claims and worker connections. The cost: a master that
stalls longer than the timeout (a long pause, a database it cannot reach) is treated as
dead, and what it was building is built again elsewhere.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.python import log

from buildbot import config
from buildbot.util import epoch2datetime, service

from rustfarm.workers.buildbot_private import release_claims_of

# Beats per timeout: a master misses two of them before the others give up on it.
BEATS_PER_TIMEOUT = 3


class MasterFailover(service.BuildbotService):
    """Add to ``c['services']`` of every master: ``MasterFailover(master_timeout=45)``."""

    name = "master-failover"

    def checkConfig(self, master_timeout=45, name=None):
        if not isinstance(master_timeout, (int, float)) or master_timeout <= 0:
            config.error("MasterFailover: master_timeout must be a positive number of seconds")

    def __init__(self, master_timeout=45, name=None, **kwargs):
        super().__init__(master_timeout=master_timeout, name=name or self.name, **kwargs)
        self._loop: task.LoopingCall | None = None

    def reconfigService(self, master_timeout=45, name=None):
        self.master_timeout = master_timeout
        if self._loop is not None and self._loop.interval != self.interval:
            self._stop_loop()
        if self.running and self._loop is None:
            self._start_loop()
        return defer.succeed(None)

    @property
    def interval(self) -> float:
        return self.master_timeout / BEATS_PER_TIMEOUT

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        if self._loop is None:
            self._start_loop()

    def stopService(self):
        self._stop_loop()
        return super().stopService()

    def _start_loop(self) -> None:
        self._loop = task.LoopingCall(self._beat_and_watch)
        self._loop.clock = self.master.reactor
        self._loop.start(self.interval, now=True)

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    @defer.inlineCallbacks
    def _beat_and_watch(self):
        # A failed pass (the database away for a moment) must not end the loop.
        try:
            yield self.beat()
            yield self.expire_silent_peers()
        except Exception as err:  # noqa: BLE001 - logged, tried again next beat
            log.err(err, "MasterFailover: beat")

    def beat(self):
        """Refresh this master's last_active, as Buildbot's own minutely heartbeat does."""
        master = self.master
        if master.masterid is None:
            return defer.succeed(None)
        return master.data.updates.masterActive(name=master.name, masterid=master.masterid)

    @defer.inlineCallbacks
    def expire_silent_peers(self):
        master = self.master
        too_old = epoch2datetime(master.reactor.seconds() - self.master_timeout)
        for peer in (yield master.db.masters.getMasters()):
            if peer.id == master.masterid or not peer.active:
                continue
            if peer.last_active is not None and peer.last_active >= too_old:
                continue
            yield self.declare_dead(peer)

    @defer.inlineCallbacks
    def declare_dead(self, peer):
        master = self.master
        log.msg(f"MasterFailover: master {peer.name} (id {peer.id}) has not been active for "
                f"{self.master_timeout} s: declaring it stopped; its builds are retried")
        claimed = yield master.db.buildrequests.getBuildRequests(complete=False,
                                                                 claimed=peer.id)
        brids = [request.buildrequestid for request in claimed]
        yield master.data.updates.masterStopped(name=peer.name, masterid=peer.id)
        # Nor does it let go of the workers still shown connected to the peer (those that
        # moved to another master would show two masters).
        for worker in (yield master.db.workers.getWorkers()):
            if peer.id in worker.connected_to:
                yield master.data.updates.workerDisconnected(workerid=worker.id,
                                                             masterid=peer.id)
        if brids:
            yield self.release_claims(peer, brids)
        # A request the peer queued just before it died may never have been announced
        # (its "new" event left with it): nothing would make a botmaster look at it
        # until an unrelated event, so every builder looks now.
        master.botmaster.maybeStartBuildsForAllBuilders()

    @defer.inlineCallbacks
    def release_claims(self, peer, brids: list[int]):
        master = self.master
        # Buildbot's housekeeping unclaims with the calling master's id, which leaves a
        # dead peer's claims in place: release them as the peer's own.
        yield release_claims_of(master.db, brids, peer.id)
        # Released in the database only: the "unclaimed" event makes every master's
        # botmaster try them now, not at its next unrelated event.
        yield master.data.updates.unclaimBuildRequests(brids)
        log.msg(f"MasterFailover: build requests {brids} of master {peer.name} are free "
                "for any master to build")
