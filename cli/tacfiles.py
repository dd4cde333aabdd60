"""The twistd .tac files `farm up` writes for the master and local workers.

They name no secret: the master reads its config through $RUSTFARM_CONFIG, a
worker reads its password from the farm's secrets directory when it starts.
"""

from __future__ import annotations

from pathlib import Path

from rustfarm.worker_tool_file import INFO_KEY, worker_tool_info, write_tool

# Both .tac files' log: twistd.log in the base directory, rotated, to the microsecond.
LOG_SETUP = '''\
logfile = LogFile.fromFullPath(os.path.join(basedir, "twistd.log"),
                               rotateLength=10000000, maxRotatedFiles=10)
observer = FileLogObserver(logfile)
# To the microsecond: where a build's time goes shows in the log.
observer.timeFormat = "%Y-%m-%d %H:%M:%S.%f"
application.setComponent(ILogObserver, observer.emit)
'''

MASTER_TAC = """\
import os

from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

from rustfarm.master.buildmaster import FarmMaster

basedir = {basedir!r}
configfile = {configfile!r}
os.environ["RUSTFARM_CONFIG"] = {farm_yaml!r}
os.environ["RUSTFARM_MASTER"] = {master!r}

# note: this line is matched against to check that this is a buildmaster
# directory; do not edit it.
application = service.Application('buildmaster')
{log_setup}
m = FarmMaster(basedir, configfile, None)
m.setServiceParent(application)
m.log_rotation.rotateLength = 10000000
m.log_rotation.maxRotatedFiles = 10
""".replace("{log_setup}", LOG_SETUP)

WORKER_TAC = """\
import os
import socket
import time

from rustfarm.workers.failover_worker import FailoverWorker
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

basedir = {basedir!r}

# note: this line is matched against to check that this is a worker
# directory; do not edit it.
application = service.Application('buildbot-worker')
{log_setup}
with open({password_file!r}) as secret:
    passwd = secret.read().strip()

# `farm up` starts its local workers with the master, whose port opens when it has
# loaded every builder: connect then, not at the worker's next retry (1 s, 2.5 s,
# 4.8 s, ... after its first). After two minutes the worker's own retries take over.
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        socket.create_connection(({host!r}, {port!r}), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)

# Its own master first, then the farm's others (if any), tried in turn at every
# reconnection; its connections send without delay (rustfarm.workers.connection).
s = FailoverWorker({masters!r}, {name!r}, passwd, basedir, 600, umask=0o022,
                   maxdelay=30, numcpus=None, allow_shutdown=None, maxRetries=None,
                   protocol="pb", useTls=0, delete_leftover_dirs=0)
s.setServiceParent(application)
""".replace("{log_setup}", LOG_SETUP)


def write_master_tac(basedir: Path, configfile: Path, farm_yaml: Path,
                     master: str = "") -> None:
    """``master``: which of farm.yaml's masters this one is ("" = its first)."""
    (basedir / "buildbot.tac").write_text(MASTER_TAC.format(
        basedir=str(basedir), configfile=str(configfile), farm_yaml=str(farm_yaml),
        master=master))


def write_worker_tac(basedir: Path, host: str, port: int, name: str, password_file: Path,
                     other_ports: tuple[int, ...] = (),
                     elsewhere: tuple[tuple[str, int], ...] = ()) -> None:
    """A worker attached to the master at ``host``:``port``; ``other_ports``, the worker
    ports of the farm's other masters on ``host``, and ``elsewhere``, those (host, port)
    of masters on other machines: where it goes, in that order, when that one is lost."""
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / "info").mkdir(exist_ok=True)
    (basedir / "info" / "admin").write_text("rustfarm local worker\n")
    (basedir / "info" / "host").write_text(f"local pool worker {name}\n")
    # The farm's worker tool, which the master's steps then run in place.
    (basedir / "info" / INFO_KEY).write_text(worker_tool_info(write_tool(basedir)))
    masters = [(host, p) for p in (port, *other_ports)] + list(elsewhere)
    (basedir / "buildbot.tac").write_text(WORKER_TAC.format(
        basedir=str(basedir), host=host, port=port, name=name, masters=masters,
        password_file=str(password_file)))
