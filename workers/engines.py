"""The Docker engines of the farm's docker pools: how to talk to each (TLS for
tcp://, the ssh client for ssh://) and which of them answer.

A pool may list several engines; each of its workers starts its containers on
one of them. ``EngineWatch`` asks every engine for a ping every few seconds and
after every failed container start: while an engine does not answer, its workers
take no builds (``FarmDockerLatentWorker.canStartBuild``), so the pool's builds go
to the engines that answer; once it answers again its workers are used again.

A builder's cache volumes live on the engine that ran its builds: the watch also
remembers, per builder, the engine of its last build, and ``WarmEngineFirst``
(the builders' ``nextWorker``) gives a request a free worker on that engine. When
none is free but one there is building, the request waits for it (a warm build
takes seconds where a cold one rebuilds std and every dependency) for at most
the pool's ``warm_engine_wait`` after it was submitted, and is offered again then;
after that, or without a warm engine, any free worker takes it, at random as with
Buildbot's default.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from buildbot.util import service
from twisted.internet import defer, task, threads
from twisted.python import log

from rustfarm.farmfile.pool_kinds import DockerEngine

from rustfarm.plumbing import ping

WATCH_INTERVAL = 10


class EngineWatch(service.BuildbotService):
    """Which Docker engines answer. ``engines`` is a list of (url, tls, pool, workers);
    an engine several pools share is one engine."""

    name = "docker-engines"

    def checkConfig(self, engines, interval: float = WATCH_INTERVAL):
        pass

    @defer.inlineCallbacks
    def reconfigService(self, engines, interval: float = WATCH_INTERVAL):
        self.engines: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
        for url, tls, pool, workers in engines:
            _, pools, known = self.engines.get(url, (tls, (), ()))
            self.engines[url] = (tls, pools + (pool,), known + tuple(workers))
        self.interval = interval
        if not hasattr(self, "down"):
            self.down: dict[str, tuple[str, float]] = {}     # url -> (why, since)
        if not hasattr(self, "warm"):
            self.warm: dict[str, str] = {}                  # builder -> engine url
            self.offers: dict[str, object] = {}             # builder -> its DelayedCall
        for url in list(self.down):
            if url not in self.engines:
                del self.down[url]
        yield self._restart_loop()

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        yield self._restart_loop()

    @defer.inlineCallbacks
    def stopService(self):
        self._stop_loop()
        yield super().stopService()

    def _stop_loop(self):
        loop = getattr(self, "_loop", None)
        if loop is not None and loop.running:
            loop.stop()
        self._loop = None

    def _restart_loop(self):
        self._stop_loop()
        if self.running and getattr(self, "engines", None):
            self._loop = task.LoopingCall(self.check_all)
            self._loop.clock = self.master.reactor
            self._loop.start(self.interval, now=True).addErrback(log.err, "watching engines")
        return defer.succeed(None)

    # -- what the workers ask -------------------------------------------

    def answers(self, url: str) -> bool:
        return url not in self.down

    def skipped(self, pool: str) -> list[str]:
        """The pool's engines that do not answer, each with why and since when."""
        return [f"{url} (does not answer since {time.strftime('%H:%M:%S', time.localtime(since))}:"
                f" {why})" for url, (why, since) in sorted(self.down.items())
                if pool in self.engines.get(url, ("", (), ()))[1]]

    def built_on(self, builder: str, url: str) -> None:
        """A build of ``builder`` starts on the engine at ``url``: its caches are there."""
        self.warm[builder] = url

    def warm_engine(self, builder: str) -> str | None:
        """The engine of the builder's last build here, while it answers."""
        url = self.warm.get(builder)
        return url if url is not None and self.answers(url) else None

    def offer_again(self, builder: str, delay: float) -> None:
        """Offer the builder's waiting requests to the free workers again in ``delay`` s."""
        pending = self.offers.get(builder)
        if pending is not None and pending.active():
            return
        botmaster = self.master.botmaster
        self.offers[builder] = self.master.reactor.callLater(
            max(delay, 0.1), botmaster.maybeStartBuildsOn, [builder])

    def engine_failed(self, url: str, why: str) -> None:
        """A worker could not reach its engine: skip the engine from now on."""
        self._mark(url, why)

    # -- asking the engines ----------------------------------------------

    @defer.inlineCallbacks
    def check_all(self):
        checks = [self.check(url) for url in list(self.engines)]
        yield defer.DeferredList(checks, consumeErrors=True)

    @defer.inlineCallbacks
    def check(self, url: str):
        tls = self.engines[url][0]
        why = yield threads.deferToThread(ping, url, tls)
        if url in self.engines:
            self._mark(url, why)

    def _mark(self, url: str, why: str) -> None:
        _, pools, workers = self.engines.get(url, ("", (), ()))
        pool = ", ".join(pools)
        was_down = url in self.down
        if why and not was_down:
            self.down[url] = (why, time.time())
            log.msg(f"Docker engine {url} of pool {pool} does not answer ({why}): skipped; "
                    f"its workers {', '.join(workers)} take no builds until it answers again "
                    f"(asked every {self.interval:g} s)")
        elif not why and was_down:
            del self.down[url]
            log.msg(f"Docker engine {url} of pool {pool} answers again: its workers "
                    f"{', '.join(workers)} take builds")
            self._wake(workers)

    def _wake(self, workers) -> None:
        known = getattr(getattr(self.master, "workers", None), "workers", {})
        for name in workers:
            worker = known.get(name)
            if worker is None:
                continue
            if worker.quarantine_timer is not None:
                worker.stopQuarantineTimer()     # its failed start was the engine's fault
            else:
                self.master.botmaster.maybeStartBuildsForWorker(name)


def _engine(worker_for_builder) -> str | None:
    return getattr(worker_for_builder.worker, "engine", None)


@dataclass(frozen=True)
class WarmEngineFirst:
    """Buildbot's ``nextWorker`` for the builders of a pool over several engines (see
    the module): ``wait`` is the pool's warm_engine_wait, in seconds."""

    wait: int

    def __call__(self, builder, workers, request):
        if not workers:
            return None
        watch = watch_of(builder.master)
        warm = watch.warm_engine(builder.name) if watch is not None else None
        if warm is None:
            return random.choice(workers)
        on_warm = [w for w in workers if _engine(w) == warm]
        if on_warm:
            return random.choice(on_warm)
        waited = builder.master.reactor.seconds() - (getattr(request, "submittedAt", 0) or 0)
        busy = any(_engine(w) == warm and w.worker is not None and w.worker.building
                   for w in builder.workers)
        if busy and waited < self.wait:
            watch.offer_again(builder.name, self.wait - waited)
            return None
        return random.choice(workers)


def engine_watch(pools) -> EngineWatch | None:
    """The watch over every engine of the farm's docker pools, or None without any."""
    engines = []
    for pool in pools:
        if pool.kind != "docker":
            continue
        by_engine: dict[DockerEngine, list[str]] = {}
        for worker, engine in pool.worker_engines().items():
            by_engine.setdefault(engine, []).append(worker)
        engines.extend((engine.url, engine.tls, pool.name, tuple(workers))
                       for engine, workers in by_engine.items())
    return EngineWatch(engines) if engines else None


def watch_of(master) -> EngineWatch | None:
    manager = getattr(master, "service_manager", None)
    return getattr(manager, "namedServices", {}).get(EngineWatch.name) if manager else None
