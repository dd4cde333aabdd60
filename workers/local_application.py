"""A local worker's twistd application: what its buildbot.tac (written by `farm up`,
cli/tacfiles.py) serves, with the settings of worker.json beside it. The password is
read from the farm's secrets directory as the worker starts, never written here.

Runs in the worker's process: it imports buildbot_worker and Twisted only."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from rustfarm.names import WORKER_SETTINGS_FILE as SETTINGS
from rustfarm.plumbing import DeadlinePassed, log_in_basedir, wait_until

from .failover_worker import FailoverWorker

# `farm up` starts its local workers with the master, whose port opens when it has
# loaded every builder: connect then, not at the worker's next retry (1 s, 2.5 s,
# 4.8 s, ... after its first). After this long the worker's own retries take over.
PORT_WAIT = 120


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = PORT_WAIT) -> bool:
    try:
        return wait_until(lambda: _answers(host, port), timeout, f"{host}:{port}", 0.05)
    except DeadlinePassed:
        return False


def serve_worker(application, tac_file: str) -> str:
    """Add the local worker to ``application``: its own master first, then the farm's
    others (if any), tried in turn at every reconnection. Its base directory."""
    basedir = Path(tac_file).resolve().parent
    settings = json.loads((basedir / SETTINGS).read_text())
    log_in_basedir(application, basedir)
    password = Path(settings["password_file"]).read_text().strip()
    masters = [(host, port) for host, port in settings["masters"]]
    wait_for_port(*masters[0])
    worker = FailoverWorker(masters, settings["name"], password, str(basedir), 600,
                            umask=0o022, maxdelay=30, numcpus=None, allow_shutdown=None,
                            maxRetries=None, protocol="pb", useTls=0, delete_leftover_dirs=0)
    worker.setServiceParent(application)
    return str(basedir)
