"""A real farm for integration tests: farm.yaml in a temporary directory, free ports,
started and stopped with the `farm` command itself."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from .registry import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"
FARM = str(Path(sys.executable).parent / "farm")
HOST_TARGET = "x86_64-unknown-linux-gnu"


def local_farm_yaml(projects: str, *, workers: int = 2, targets: str | None = None) -> str:
    """farm.yaml of one local pool and no nightly builds: ``targets`` (default: the
    host's, its tests run natively) and ``projects``, each its section's YAML lines."""
    targets = targets or f"  {HOST_TARGET}: {{pool: local, runner: native}}\n"
    return ("schedule: {nightly: false}\nworkers:\n"
            f"  local: {{kind: local, count: {workers}}}\n"
            f"targets:\n{targets}projects:\n{projects}")


def farm_command(config: Path, *args: str, check: bool = True, timeout: float = 300,
                 input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([FARM, "--config", str(config), *args], capture_output=True,
                          text=True, timeout=timeout, input=input, cwd=config.parent)
    if check and done.returncode != 0:
        raise AssertionError(f"farm {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


class RunningFarm:
    """A farm started by `farm up` from a farm.yaml written for one test."""

    def __init__(self, directory: Path, body: str, users: str = "[admin]",
                 master_address: str = ""):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.www_port = free_port()
        self.worker_port = free_port()
        self.config = directory / "farm.yaml"
        self.config.write_text(
            f"farm:\n  name: test\n  worker_port: {self.worker_port}\n"
            + (f"  master_address: {master_address}\n" if master_address else "")
            + f"www:\n  port: {self.www_port}\n  users: {users}\n" + body)
        self.url = f"http://127.0.0.1:{self.www_port}/"
        self.session = requests.Session()
        self.up_output = ""

    @property
    def state(self) -> Path:
        return self.directory / ".farm"

    def up(self) -> "RunningFarm":
        self.up_output = farm_command(self.config, "up").stdout
        return self

    def down(self) -> None:
        # A kept-alive connection of this session would hold the web server's shutdown
        # until it times out.
        self.session.close()
        farm_command(self.config, "down", check=False)

    def farm(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return farm_command(self.config, *args, **kwargs)

    # -- REST -----------------------------------------------------------

    def api(self, path: str, **params) -> dict:
        reply = self.session.get(f"{self.url}api/v2/{path}", params=params, timeout=30,
                                 headers={"Accept": "application/json"})
        reply.raise_for_status()
        return reply.json()

    def password(self, user: str = "admin") -> str:
        return (self.state / "secrets" / f"ui-{user}").read_text().strip()

    def login(self, user: str = "admin") -> None:
        reply = self.session.get(f"{self.url}auth/login", auth=(user, self.password(user)),
                                 timeout=30)
        reply.raise_for_status()

    def force(self, scheduler: str, **params) -> dict[str, int]:
        """POST the JSON-RPC force call; returns {builder name: build request id}."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": params}
        reply = self.session.post(f"{self.url}api/v2/forceschedulers/{scheduler}", json=body,
                                  timeout=30, headers={"Accept": "application/json"})
        assert reply.status_code == 200, reply.text
        _, brids = reply.json()["result"]
        names = {b["builderid"]: b["name"] for b in self.api("builders")["builders"]}
        return {names[int(bid)]: brid for bid, brid in brids.items()}

    def wait_for_build(self, brid: int, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            builds = self.api("builds", buildrequestid=brid)["builds"]
            if builds and builds[-1]["complete"] and builds[-1]["results"] != 5:
                return builds[-1]
            time.sleep(0.5)
        raise AssertionError(f"build request {brid} did not finish within {timeout} s")

    def steps(self, build: dict) -> list[dict]:
        return self.api(f"builds/{build['buildid']}/steps")["steps"]

    def step_log(self, build: dict, step_name: str) -> str:
        step = next(s for s in self.steps(build) if s["name"] == step_name)
        reply = self.session.get(
            f"{self.url}api/v2/builds/{build['buildid']}/steps/{step['number']}/logs/stdio/raw",
            timeout=30)
        reply.raise_for_status()
        return reply.text

    def all_logs(self, build: dict) -> str:
        """Every log of every step of ``build``, as Buildbot serves them."""
        texts = []
        for step in self.steps(build):
            base = f"{self.url}api/v2/builds/{build['buildid']}/steps/{step['number']}/logs"
            for log in self.session.get(base, timeout=30).json()["logs"]:
                reply = self.session.get(f"{base}/{log['slug']}/raw", timeout=30)
                reply.raise_for_status()
                texts.append(reply.text)
        return "".join(texts)

    def artifact_urls(self, build: dict) -> list[str]:
        return [u["url"] for s in self.steps(build) for u in s.get("urls", [])]


def two_masters_yaml(farm: RunningFarm, db: str = "", master_timeout: int | None = None) -> str:
    """farm.yaml's lines for a farm of two masters on this machine: ``first`` on the
    farm's ports, ``second`` on free ones, the farm's own router, and ``db`` (a YAML
    flow mapping; default: the farm's own PostgreSQL server on a free port). Leaves
    each master's web UI address in ``farm.first_url`` and ``farm.second_url``."""
    second_www = free_port()
    farm.first_url, farm.second_url = farm.url, f"http://127.0.0.1:{second_www}/"
    failover = (f"failover: {{master_timeout: {master_timeout}}}\n"
                if master_timeout is not None else "")
    return (f"db: {db or f'{{server: local, port: {free_port()}}}'}\n"
            "masters:\n"
            f"  - {{name: first, www_port: {farm.www_port}, worker_port: {farm.worker_port}}}\n"
            f"  - {{name: second, www_port: {second_www}, worker_port: {free_port()}}}\n"
            f'router: {{url: "ws://127.0.0.1:{free_port()}/ws"}}\n' + failover)


def wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    """``condition()``'s first true value, asked every ``interval`` seconds (the farm's
    own wait, rustfarm/plumbing.py); AssertionError saying ``what`` did not happen once
    ``timeout`` seconds are over."""
    from rustfarm.plumbing import DeadlinePassed, wait_until as farm_wait_until
    try:
        return farm_wait_until(condition, timeout, what, interval)
    except DeadlinePassed as late:
        raise AssertionError(str(late)) from None


def pids_alive(pidfiles: list[Path]) -> list[int]:
    from rustfarm.cli.processes import read_pid
    return [pid for pid in map(read_pid, pidfiles) if pid]
