"""Terminate this farm's EC2 instances that no worker of this master owns.

A master that crashed, was killed, or lost an API call while terminating leaves
instances running (and billing). Every instance the farm launches carries the
tag ``rustfarm:farm=<farm>`` from its first moment, so at master start and then
every ``interval`` seconds the reaper lists the farm's instances that are
pending, running, stopping or stopped, and terminates each one that is neither
the live instance of one of this master's EC2 workers nor possibly being
launched by one right now. Each termination is logged with the instance id, its
worker tag and its age.

Instances of other farms (another ``rustfarm:farm`` value, or no tag) are never
touched. In a farm of several masters each instance also carries the
``rustfarm:master`` tag of the master that launched it: a master leaves the
instances of every other master the database says is active alone, and reaps
those of a master that is not (one killed, whose heartbeat stopped, or no longer
in the database), so a dead master's instances do not outlive it. An instance
without that tag counts as this master's.
"""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet import defer, task, threads
from twisted.python import log

from buildbot import config
from buildbot.util import service

from .api import (LIVE_STATES, TAG_FARM, TAG_MASTER, TAG_POOL, TAG_WORKER, Ec2Connector,
                      age_text, connection_problems, master_tag, tags_of)


class FarmEC2Reaper(service.BuildbotService):
    """Add to ``c['services']``: ``FarmEC2Reaper(farm='rustfarm')``."""

    def checkConfig(self, farm=None, regions=None, interval=300, endpoint_url=None,
                    aws_access_key_id=None, aws_secret_access_key=None,
                    aws_session_token=None, name=None):
        where = "FarmEC2Reaper"
        if not farm or not isinstance(farm, str):
            config.error(f"{where}: farm must be a non-empty string")
        if regions is not None and (isinstance(regions, str)
                                    or not all(isinstance(r, str) and r for r in regions)):
            config.error(f"{where}: regions must be a list of region names")
        if not isinstance(interval, (int, float)) or interval <= 0:
            config.error(f"{where}: interval must be a positive number of seconds")
        for problem in connection_problems(endpoint_url, aws_access_key_id,
                                           aws_secret_access_key):
            config.error(f"{where}: {problem}")

    def __init__(self, farm=None, regions=None, interval=300, name=None, **kwargs):
        super().__init__(farm=farm, regions=regions, interval=interval,
                         name=name or f"ec2-reaper-{farm}", **kwargs)
        self._loop: task.LoopingCall | None = None
        self._loop_done: defer.Deferred | None = None
        self._connector = Ec2Connector()
        self._warned_no_region = False
        self._master_ready = False
        self._spared = 0

    def reconfigService(self, farm=None, regions=None, interval=300, endpoint_url=None,
                        aws_access_key_id=None, aws_secret_access_key=None,
                        aws_session_token=None, name=None):
        self.farm = farm
        self.regions = list(regions) if regions is not None else None
        self.endpoint_url = endpoint_url
        self.credentials = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        if self._loop is not None and self._loop.running and self._loop.interval != interval:
            self._loop.stop()
            self._loop = None
        self.interval = interval
        if self.running and self._master_ready and self._loop is None:
            self._start_loop()
        return defer.succeed(None)

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        # Not awaited: the master configures its workers after its services and holds
        # initLock until all of them are; a first pass before that would see no
        # worker (no region to watch, no owned instance).
        self._start_when_master_ready().addErrback(log.err, "FarmEC2Reaper start")

    @defer.inlineCallbacks
    def _start_when_master_ready(self):
        yield self.master.initLock.acquire()
        self.master.initLock.release()
        self._master_ready = True
        if self.running and self._loop is None:
            self._start_loop()

    @defer.inlineCallbacks
    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._loop_done is not None:
            yield self._loop_done
        yield super().stopService()

    def _start_loop(self):
        self._loop = task.LoopingCall(self._reap_logged)
        self._loop.clock = self.master.reactor
        # now=True: the first pass runs as the master starts.
        self._loop_done = self._loop.start(self.interval, now=True)
        self._loop_done.addErrback(log.err, "FarmEC2Reaper loop")

    # Seconds before a follow-up pass when one spared instances of launching workers.
    follow_up_delay = 15

    @defer.inlineCallbacks
    def _reap_logged(self):
        try:
            yield self.reap()
        except Exception as e:
            # An unreachable API must not stop the loop; the next pass tries again.
            log.msg(f"{self.name}: pass failed: {e}")
            return
        if self._spared and self.running:
            # An instance tagged with a worker that is launching right now may be an
            # orphan of an earlier master: look again once the launch is known.
            self.master.reactor.callLater(self.follow_up_delay, self._follow_up)

    def _follow_up(self):
        if self.running:
            self._reap_logged()

    # -- one pass --------------------------------------------------------------

    def farm_workers(self) -> list:
        from .worker import FarmEC2LatentWorker

        return [w for w in self.master.workers.workers.values()
                if isinstance(w, FarmEC2LatentWorker)
                and getattr(w, "launch", None) is not None and w.launch.farm == self.farm]

    def _owned(self) -> tuple[set[str], set[str]]:
        owned, launching = set(), set()
        for worker in self.farm_workers():
            if worker.live_instance_id is not None:
                owned.add(worker.live_instance_id)
            if worker.is_launching:
                launching.add(worker.workername)
        return owned, launching

    @defer.inlineCallbacks
    def reap(self):
        """One pass over every region; returns the ids of the instances terminated."""
        endpoint_url, key_id, secret_key, token = yield self.renderSecrets(
            self.endpoint_url, *self.credentials)
        regions = self.regions
        if regions is None:
            regions = sorted({w.launch.region for w in self.farm_workers()})
            if not regions and not self._warned_no_region:
                log.msg(f"{self.name}: no EC2 worker of farm {self.farm} on this master and "
                        "no regions given: nothing to watch")
                self._warned_no_region = True
        reaped = []
        self._spared = 0
        mine = master_tag(self.master.name)
        others = None
        for region in regions:
            connection = {"region": region, "endpoint_url": endpoint_url,
                          "access_key_id": key_id, "secret_access_key": secret_key,
                          "session_token": token}
            candidates = yield threads.deferToThread(self._thd_list, connection)
            # Ownership is read on the reactor thread, after listing: an instance
            # launched meanwhile is either owned or its worker is still launching.
            owned, launching = self._owned()
            if others is None and any(launched_by(c, mine) != mine for c in candidates):
                # Asked only when another master's instance is there to judge.
                others = (yield self.active_masters()) - {mine}
            orphans = []
            for candidate in candidates:
                by = launched_by(candidate, mine)
                if candidate["InstanceId"] in owned or (by != mine and by in others):
                    continue
                if by == mine and tags_of(candidate).get(TAG_WORKER) in launching:
                    self._spared += 1       # maybe the one being launched right now
                    continue
                orphans.append(candidate)
            if orphans:
                yield threads.deferToThread(self._thd_terminate, connection, region, orphans)
                reaped += [o["InstanceId"] for o in orphans]
        return reaped

    @defer.inlineCallbacks
    def active_masters(self):
        """The ``rustfarm:master`` tags of the masters the database says are active."""
        masters = yield self.master.data.get(("masters",))
        return {master_tag(m["name"]) for m in masters if m["active"]}

    def _thd_list(self, connection: dict) -> list[dict]:
        client = self._connector.client(**connection)
        found = []
        paginator = client.get_paginator("describe_instances")
        for page in paginator.paginate(Filters=[
                {"Name": f"tag:{TAG_FARM}", "Values": [self.farm]},
                {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]):
            for reservation in page["Reservations"]:
                found += reservation["Instances"]
        return found

    def _thd_terminate(self, connection: dict, region: str, orphans: list[dict]) -> None:
        client = self._connector.client(**connection)
        now = datetime.now(timezone.utc)
        mine = master_tag(self.master.name)
        for orphan in orphans:
            tags = tags_of(orphan)
            by = launched_by(orphan, mine)
            whose = "" if by == mine else f", launched by master {by}, which is not active"
            log.msg(f"{self.name}: terminating orphan instance {orphan['InstanceId']} in "
                    f"{region} (worker {tags.get(TAG_WORKER, '?')}, pool "
                    f"{tags.get(TAG_POOL, '?')}, {orphan['State']['Name']}, age "
                    f"{age_text(orphan.get('LaunchTime'), now)}{whose})")
        client.terminate_instances(InstanceIds=[o["InstanceId"] for o in orphans])


def launched_by(description: dict, mine: str) -> str:
    """The ``rustfarm:master`` tag of an instance; ``mine`` where it has none (launched
    before instances named their master)."""
    return tags_of(description).get(TAG_MASTER, mine)
