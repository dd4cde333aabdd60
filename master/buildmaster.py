"""The farm's BuildMaster: one that creates or upgrades its own database as it starts.

Buildbot leaves that to ``buildbot upgrade-master``, a process of its own that
imports Buildbot and loads the whole configuration a second time, which lengthens
every fresh farm's start (docs/benchmarks.md). A farm's database belongs to the
farm, so its master brings the schema to Buildbot's current one before it uses
it, the way ``upgrade-master`` does (the same steps, the same migrations), and
says so in its log.
"""

from __future__ import annotations

import re
from pathlib import Path

import buildbot

from buildbot.db.connector import DBConnector
from buildbot.master import BuildMaster
from buildbot.util import stripUrlPassword
from twisted.internet import defer
from twisted.python import log

from rustfarm.master.botmaster import FarmBotMaster
from rustfarm.master.forge_hooks import FarmWWWService


class DatabaseUnavailableError(Exception):
    """The master cannot open or prepare its database: the message says which and why."""


@defer.inlineCallbacks
def bring_schema_up_to_date(basedir: str, config, db_config) -> defer.Deferred:
    """What ``buildbot upgrade-master`` does, in this process: a connector of its own
    (the master's keeps its caches), the schema checked and, unless current, migrated.
    It connects with ``db_config`` as the master rendered it: the URL's password comes
    from the master's secrets provider, which this connector's master has not set up."""
    upgrader = BuildMaster(basedir)
    upgrader.config = config
    db = DBConnector(basedir=basedir)
    try:
        yield db.set_master(upgrader)
        db.configured_db_config = db_config
        yield db.setup(check_version=False, verbose=False)
        if (yield db.model.is_current()):
            return
        log.msg("bringing the database to this Buildbot's schema (a new database, or one "
                "an older Buildbot made)")
        yield db.model.upgrade()
        # Masters recorded before are not running (multi-master: they register again).
        yield db.masters.setAllMastersActiveLongTimeAgo()
    finally:
        if db.pool is not None:
            yield db.pool.stop()


class FarmMaster(BuildMaster):
    """Buildbot's master, whose database is made current before its first use, whose
    BotMaster registers builders from one read of the database, and whose web server
    checks each forge webhook with its project's secret (master/forge_hooks.py)."""

    _schema_checked = False

    @defer.inlineCallbacks
    def create_child_services(self):
        yield super().create_child_services()
        # Buildbot's BotMaster gives way to the farm's, in its place among the services.
        stock = self.botmaster
        place = self.services.index(stock)
        yield stock.disownServiceParent()
        self.botmaster = FarmBotMaster()
        yield self.botmaster.setServiceParent(self)
        self.services.insert(place, self.services.pop())
        self.botmaster.reconfig_priority = stock.reconfig_priority
        # Buildbot's web server gives way to one with the farm's change hooks.
        stock = self.www
        place = self.services.index(stock)
        yield stock.disownServiceParent()
        self.www = FarmWWWService()
        yield self.www.setServiceParent(self)
        self.services.insert(place, self.services.pop())
        self.www.reconfig_priority = stock.reconfig_priority

    @defer.inlineCallbacks
    def get_db_config(self, new_config):
        db_config = yield super().get_db_config(new_config)
        if not self._schema_checked and not self._schema_known_current(db_config.db_url):
            try:
                yield bring_schema_up_to_date(self.basedir, new_config, db_config)
            except Exception as err:
                # SQLAlchemy's "(psycopg.OperationalError) connection failed: ..." -> the reason
                cause = (str(err).strip().splitlines() or [type(err).__name__])[0]
                cause = re.sub(r"^\([\w.]+\) ", "", cause)
                if "no password supplied" in cause or "password authentication failed" in cause:
                    cause += " (`farm db-password` stores the database password)"
                raise DatabaseUnavailableError(
                    f"cannot open or prepare the database {stripUrlPassword(db_config.db_url)}: "
                    f"{cause}") from err
            self._schema_stamp.write_text(self._stamp_for(db_config.db_url))
        self._schema_checked = True
        return db_config

    # Made current by this Buildbot already: a restart skips the check (Buildbot's own
    # still runs). The stamp names the version and the database; a new SQLite file
    # is checked again.
    @property
    def _schema_stamp(self) -> Path:
        return Path(self.basedir) / ".schema-current"

    @staticmethod
    def _stamp_for(url: str) -> str:
        return f"{buildbot.version} {stripUrlPassword(url)}\n"

    def _schema_known_current(self, url: str) -> bool:
        try:
            if self._schema_stamp.read_text() != self._stamp_for(url):
                return False
        except OSError:
            return False
        if url.startswith("sqlite:///"):
            database = Path(url.removeprefix("sqlite:///"))
            return (database if database.is_absolute() else Path(self.basedir) / database).exists()
        return True
