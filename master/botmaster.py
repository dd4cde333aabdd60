"""Builders registered from what the database already holds.

As it starts, Buildbot's BotMaster registers each builder on its own: it finds
the builder's id, its project's id and its tags' ids (a query each), rewrites
the builder's description, project and tags, announces that update (which reads
the builder back with every builder's tags), and marks the builder as this
master's (two more), one builder after another, a large part of a large farm's
restart (docs/benchmarks.md). Here the builders and projects are read
once, a builder whose stored description, project and tags are what the
configuration says is left as it is, and this master's builders are recorded
in one transaction. A new or changed builder goes Buildbot's own way.

And it offers workers to builders sooner after build requests arrive: see
REQUESTS_GATHERED_FOR.
"""

from __future__ import annotations

import sqlalchemy as sa
from buildbot.process.builder import Builder
from buildbot.util import bytes2unicode, diffSets
from buildbot.util.render_description import render_description
from twisted.internet import defer
from twisted.python import log

from rustfarm.workers.buildbot_private import BotMasterPrivates, BuilderPrivates, gathered_flush

from .prioritizer import unclaimed_requests


class FarmBuilder(BuilderPrivates):
    """A builder that knows its database row, if it has one, before it is configured."""

    def __init__(self, name: str, stored=None, project_ids: dict[str, int] | None = None):
        super().__init__(name)
        self.stored = stored
        self.project_ids = project_ids or {}
        if stored is not None:
            self.know_builder_id(stored.id)

    def find_project_id(self, project):
        if project in self.project_ids:
            return defer.succeed(self.project_ids[project])
        return super().find_project_id(project)

    def reconfigServiceWithBuildbotConfig(self, new_config):
        stored, self.stored = self.stored, None
        config = self.builder_config_named(new_config)
        if self.config is None and stored is not None and self.matches(stored, config):
            # What Buildbot would write is there: it sees an unchanged configuration.
            self.config = config
            self.project_name = config.project
            self.project_id = stored.projectid
        return super().reconfigServiceWithBuildbotConfig(new_config)

    def matches(self, stored, config) -> bool:
        project_id = self.project_ids.get(config.project) if config.project else None
        if config.project and project_id is None:
            return False
        return (stored.description == config.description
                and stored.description_format == config.description_format
                and stored.projectid == project_id
                and sorted(set(stored.tags)) == sorted(set(config.tags or [])))


# Seconds the only master of a farm gathers new build requests before it offers workers
# to their builders. Buildbot waits until none has arrived for 0.1 s, which every build
# then waits out; a buildset's requests (a build of every target) are announced
# together, so a far shorter wait still gathers them. A master of several keeps
# Buildbot's wait: its requests come through the router, and with the shorter one two
# builds of one builder forced together may not run at once on two masters. Figures:
# docs/benchmarks.md, "Figures behind the code".
REQUESTS_GATHERED_FOR = 0.01


class FarmBotMaster(BotMasterPrivates):
    """Buildbot's BotMaster, registering its builders from one read of the database,
    and, as the only master of its farm, starting builds REQUESTS_GATHERED_FOR after
    their requests arrive."""

    gather_briefly = gathered_flush(REQUESTS_GATHERED_FOR)

    def gathering(self):
        config = getattr(self.master, "config", None)
        if getattr(config, "multiMaster", False):
            return self.buildbot_gathering
        return self.gather_briefly

    def request_added(self, key, msg) -> None:
        # The prioritizer's summary of unclaimed requests learns of a new or unclaimed
        # one from its own subscription, which the WAMP router of several masters may
        # deliver after this one: had the distributor sorted the builders first, from
        # the summary without it, the request would wait for the next event.
        unclaimed_requests(self.master).changed(key, msg)

    @defer.inlineCallbacks
    def reconfigProjects(self, new_config):
        stored = {p.name: p for p in (yield self.master.db.projects.get_projects())}
        updates = self.master.data.updates
        for config in new_config.projects:
            known = stored.get(config.name)
            if (known is not None and known.slug == config.slug
                    and known.description == config.description
                    and known.description_format == config.description_format):
                continue
            projectid = yield updates.find_project_id(config.name)
            yield updates.update_project_info(
                projectid, config.slug, config.description, config.description_format,
                render_description(config.description, config.description_format))

    @defer.inlineCallbacks
    def reconfigServiceBuilders(self, new_config):
        old_by_name = {b.name: b for b in list(self) if isinstance(b, Builder)}
        removed, added = diffSets(set(old_by_name), {bc.name for bc in new_config.builders})
        if removed or added:
            log.msg(f"adding {len(added)} new builders, removing {len(removed)}")
            for name in removed:
                builder = old_by_name[name]
                del self.builders[name]
                builder.master = None
                builder.botmaster = None
                yield builder.disownServiceParent()
            stored = {}
            if added:
                stored = {b.name: b for b in (yield self.master.db.builders.getBuilders())}
            project_ids = {p.name: p.id for p in (yield self.master.db.projects.get_projects())}
            for name in sorted(added):
                builder = FarmBuilder(name, stored.get(name), project_ids)
                self.builders[name] = builder
                builder.botmaster = self
                builder.master = self.master
                yield builder.setServiceParent(self)

        self.builderNames = list(self.builders)
        by_id = {}
        for builder in self.builders.values():
            by_id[(yield builder.getBuilderId())] = builder
        self.set_builders_by_id(by_id)
        yield self.record_builder_list()

    @defer.inlineCallbacks
    def record_builder_list(self):
        """Buildbot's ``updateBuilderList`` with the ids the builders know, the new rows
        in one transaction, and the same messages for the web UI."""
        masterid = self.master.masterid
        db = self.master.db.builders
        mine = {b.name: b.id for b in (yield db.getBuilders(masterid=masterid))}
        wanted = {bytes2unicode(b.name): b.builder_id_known for b in self.builders.values()}
        for name, builderid in mine.items():
            if name not in wanted:
                yield db.removeBuilderMaster(masterid=masterid, builderid=builderid)
                self.announce(builderid, name, "stopped")
        new = {name: builderid for name, builderid in wanted.items() if name not in mine}
        if new:
            try:
                yield self.master.db.pool.do_with_transaction(
                    self._thd_add_builder_masters, masterid, sorted(new.values()))
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                for builderid in new.values():  # some were there after all: one by one
                    yield db.addBuilderMaster(masterid=masterid, builderid=builderid)
        for name, builderid in new.items():
            self.announce(builderid, name, "started")

    def announce(self, builderid: int, name: str, event: str) -> None:
        self.master.mq.produce(("builders", str(builderid), event),
                               {"builderid": builderid, "masterid": self.master.masterid,
                                "name": name})

    def _thd_add_builder_masters(self, conn, masterid: int, builderids: list[int]) -> None:
        conn.execute(self.master.db.model.builder_masters.insert(),
                     [{"builderid": b, "masterid": masterid} for b in builderids])
