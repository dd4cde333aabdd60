"""The farm's WAMP router for Buildbot's multi-master mode: crossbar, run by `farm up`
from its own environment with its node directory in the state directory.

Buildbot's masters join the router without authentication, so the router this starts
listens on the loopback address of farm.yaml's router URL only; a router on another
machine is that machine's to run (README: several machines).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile.model import RouterSettings
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say

from .processes import read_pid, stop_pid

CROSSBAR_ENV = "RUSTFARM_CROSSBAR"
REPO = Path(__file__).resolve().parent.parent
# crossbar pins idna<2.6 and other versions Buildbot's own environment cannot share:
# it gets an environment of its own, made by `tools/bootstrap --router`.
ROUTER_VENV = REPO / ".router-venv"


def crossbar_executable() -> Path:
    configured = os.environ.get(CROSSBAR_ENV)
    return Path(configured) if configured else ROUTER_VENV / "bin" / "crossbar"


def is_local(router: RouterSettings) -> bool:
    return router.host in ("127.0.0.1", "localhost", "::1")


def crossbar_config(router: RouterSettings) -> dict:
    """One router worker, one realm every master may use, one WebSocket transport."""
    allow = {"call": True, "register": True, "publish": True, "subscribe": True}
    return {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "realms": [{"name": router.realm, "roles": [{
                "name": "anonymous",
                "permissions": [{"uri": "", "match": "prefix", "allow": allow,
                                 "disclose": {"caller": False, "publisher": False},
                                 "cache": True}]}]}],
            "transports": [{"type": "websocket",
                            "endpoint": {"type": "tcp", "port": router.port,
                                         "interface": "127.0.0.1"}}],
        }],
    }


class Router:
    """crossbar in ``<state>/router``: its node directory, log and pid file."""

    def __init__(self, state_root: Path, router: RouterSettings):
        self.router = router
        self.directory = state_root / "router"
        self.node = self.directory / ".crossbar"
        self.pidfile = self.directory / "crossbar.pid"
        self.log = self.directory / "crossbar.log"

    @property
    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    def answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.router.port), timeout=1).close()
        except OSError:
            return False
        return True

    def start(self, timeout: float = 60) -> None:
        if self.pid:
            return
        executable = crossbar_executable()
        if not executable.exists():
            raise FarmError(f"no crossbar at {executable}: `tools/bootstrap --router` "
                            f"installs it (or set {CROSSBAR_ENV})")
        if self.answers():
            raise FarmError(f"cannot start the router: port {self.router.port} on 127.0.0.1 "
                            "(router.url) is already in use by another program")
        self.node.mkdir(parents=True, exist_ok=True)
        (self.node / "config.json").write_text(json.dumps(crossbar_config(self.router),
                                                          indent=1))
        say(f"starting the WAMP router (crossbar) in {self.directory}")
        with self.log.open("ab") as log:
            process = subprocess.Popen([str(executable), "start", "--cbdir", str(self.node)],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.pidfile.write_text(f"{process.pid}\n")
        def listening() -> bool:
            if process.poll() is not None:
                raise FarmError(f"the router stopped while starting; see {self.log}")
            return self.answers()

        try:
            wait_until(listening, timeout, "the router did not listen", interval=0.2)
        except DeadlinePassed as late:
            raise FarmError(f"{late}; see {self.log}") from None

    def stop(self) -> bool:
        return stop_pid(self.pidfile, "router", timeout=30)
