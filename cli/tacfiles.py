"""The twistd .tac files `farm up` writes for the master and local workers, and the
settings files (JSON) beside them that the farm's code serving them reads.

They name no secret: the master reads its config through $RUSTFARM_CONFIG, a
worker reads its password from the farm's secrets directory when it starts.
"""

from __future__ import annotations

import json
from pathlib import Path

from rustfarm.names import MASTER_SETTINGS_FILE as MASTER_SETTINGS
from rustfarm.names import WORKER_SETTINGS_FILE as WORKER_SETTINGS
from rustfarm.worker_tool_file import INFO_KEY, worker_tool_info, write_tool

# Each .tac hands its application to the farm's code (master/application.py,
# workers/local_application.py), which reads the settings file beside it. The
# Application lines are what Buildbot's and buildbot-worker's commands look for.
MASTER_TAC = """\
from twisted.application import service

from rustfarm.master.application import serve_master

# note: this line is matched against to check that this is a buildmaster
# directory; do not edit it.
application = service.Application('buildmaster')
basedir, configfile = serve_master(application, __file__)
"""

WORKER_TAC = """\
from twisted.application import service

from rustfarm.workers.local_application import serve_worker

# note: this line is matched against to check that this is a worker
# directory; do not edit it.
application = service.Application('buildbot-worker')
basedir = serve_worker(application, __file__)
"""


def write_master_tac(basedir: Path, configfile: Path, farm_yaml: Path,
                     master: str = "") -> None:
    """``master``: which of farm.yaml's masters this one is ("" = its first)."""
    (basedir / MASTER_SETTINGS).write_text(json.dumps(
        {"configfile": str(configfile), "farm_yaml": str(farm_yaml), "master": master},
        indent=2) + "\n")
    (basedir / "buildbot.tac").write_text(MASTER_TAC)


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
    (basedir / WORKER_SETTINGS).write_text(json.dumps(
        {"name": name, "masters": masters, "password_file": str(password_file)},
        indent=2) + "\n")
    (basedir / "buildbot.tac").write_text(WORKER_TAC)
