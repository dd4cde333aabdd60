"""rustfarm/worker's entrypoint: clear failures, and a real Buildbot master whose
builds run as rustbuild without the worker's password in their environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.images.containers import container_name
from tests.support.farm import wait_until
from tests.support.registry import free_port
from tests.support.sockets import sends_without_delay, socket_holder

pytestmark = pytest.mark.docker
PASSWORD = "pw-4f1d9c-not-for-builds"
BUILDBOT = Path(sys.executable).with_name("buildbot")


def run_worker(client, image, environment, network="none", timeout=60):
    container = client.containers.run(image, detach=True, name=container_name("worker"),
                                      environment=environment, network_mode=network)
    try:
        status = container.wait(timeout=timeout)
        return status["StatusCode"], container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_missing_variables_are_named_and_exit_2(built_chain, docker_client):
    code, output = run_worker(docker_client, built_chain.reference("worker"),
                              {"BUILDMASTER": "127.0.0.1"})
    assert code == 2
    assert ("rustfarm-worker: missing environment variable(s):"
            " BUILDMASTER_PORT WORKERNAME WORKERPASS") in output


def test_a_bad_port_is_a_clear_error(built_chain, docker_client):
    code, output = run_worker(docker_client, built_chain.reference("worker"), {
        "BUILDMASTER": "127.0.0.1", "BUILDMASTER_PORT": "pb", "WORKERNAME": "w",
        "WORKERPASS": "p"})
    assert code == 2
    assert "BUILDMASTER_PORT must be a port number" in output


def test_an_unreachable_master_exits_3_after_maxretries(built_chain, docker_client):
    code, output = run_worker(docker_client, built_chain.reference("worker"), {
        "BUILDMASTER": "127.0.0.1", "BUILDMASTER_PORT": "9", "WORKERNAME": "w",
        "WORKERPASS": PASSWORD, "RUSTFARM_WORKER_MAXRETRIES": "2"})
    assert code == 3, output
    assert "could not reach the buildmaster at 127.0.0.1:9 after 2 attempts" in output
    assert PASSWORD not in output


MASTER_CFG = """
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker("imgtest", {password!r})]
c["protocols"] = {{"pb": {{"port": "tcp:{pb_port}:interface=127.0.0.1"}}}}
c["builders"] = [util.BuilderConfig(
    name="env", workernames=["imgtest"],
    factory=util.BuildFactory([steps.ShellCommand(
        name="env", command=["sh", "-c", "id -un; env; cat ~/worker/.workerpass || true"])]))]
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["env"])]
c["www"] = {{"port": "tcp:{www_port}:interface=127.0.0.1", "plugins": {{}}}}
c["buildbotURL"] = "http://127.0.0.1:{www_port}/"
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
"""


class Master:
    def __init__(self, basedir: Path):
        self.basedir = basedir
        self.pb_port, self.www_port = free_port(), free_port()
        self.process = None

    def api(self, path, body=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.www_port}/api/v2/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Accept": "application/json", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def start(self):
        subprocess.run([str(BUILDBOT), "create-master", "-q", str(self.basedir)], check=True)
        (self.basedir / "master.cfg").write_text(MASTER_CFG.format(
            password=PASSWORD, pb_port=self.pb_port, www_port=self.www_port))
        log = (self.basedir / "stdout.log").open("ab")
        self.process = subprocess.Popen([str(BUILDBOT), "start", "--nodaemon", str(self.basedir)],
                                        stdout=log, stderr=log)
        self.wait_for(lambda: self.api("builders")["builders"], "the master's REST API")

    def wait_for(self, probe, what, timeout=60):
        """``probe()``'s first true value (an OSError counts as not yet); fails at once
        when the master exits."""
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"master exited: {(self.basedir / 'twistd.log').read_text()[-2000:]}")
            try:
                return probe()
            except OSError:
                return None
        return wait_until(ready, timeout, f"timed out waiting for {what}", 0.3)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def master(tmp_path):
    if not BUILDBOT.exists():
        pytest.skip("the buildbot master is not installed beside this Python")
    master = Master(tmp_path / "master")
    try:
        master.start()
        yield master
    finally:
        master.stop()


def test_worker_connects_and_builds_never_see_the_password(built_chain, docker_client, master):
    container = docker_client.containers.run(
        built_chain.reference("worker"), detach=True, name=container_name("worker"),
        network_mode="host",  # reaches the master on the host's loopback
        environment={"BUILDMASTER": "127.0.0.1", "BUILDMASTER_PORT": str(master.pb_port),
                     "WORKERNAME": "imgtest", "WORKERPASS": PASSWORD,
                     "FARM_TOKEN": "token-kept-from-builds",
                     "WORKER_ENVIRONMENT_BLACKLIST": "FARM_*"})
    try:
        master.wait_for(lambda: [w for w in master.api("workers")["workers"]
                                 if w["name"] == "imgtest" and w["connected_to"]],
                        "the worker to connect")
        master.api("forceschedulers/force", {"jsonrpc": "2.0", "id": 1, "method": "force",
                                             "params": {"builderid": "1"}})
        build = master.wait_for(lambda: [b for b in master.api("builds")["builds"]
                                         if b["complete"]], "the build")[0]
        step = [s for s in master.api(f"builds/{build['buildid']}/steps")["steps"]
                if s["name"] == "env"][0]
        log = master.api(f"steps/{step['stepid']}/logs")["logs"][0]
        request = f"http://127.0.0.1:{master.www_port}/api/v2/logs/{log['logid']}/raw"
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        assert build["results"] == 0, text
        assert "\nrustbuild\n" in f"\n{text}"
        assert "BUILDMASTER_PORT=" in text  # the environment is passed on ...
        assert "WORKERPASS" not in text and PASSWORD not in text  # ... but not the password
        assert "FARM_TOKEN" not in text  # nor what WORKER_ENVIRONMENT_BLACKLIST names
        assert "No such file" in text  # the password file is gone
        # Nor in the environment of process 1 (tini) or its child (twistd), which
        # builds could read. (`docker exec` itself gets the container's variables.)
        environ = container.exec_run(["sh", "-c", "for p in 1 $(cat /proc/1/task/1/children);"
                                      " do tr '\\0' '\\n' </proc/$p/environ; done"]
                                     ).output.decode()
        assert "HOME=/home/rustbuild" in environ
        assert PASSWORD not in environ
        logs = container.logs().decode(errors="replace")
        assert "Connected to buildmaster; worker is ready" in logs  # twistd logs to stdout
        assert PASSWORD not in logs
    finally:
        container.remove(force=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_the_worker_sends_to_its_master_without_nagle(built_chain, docker_client, master):
    """Over TCP (a container of a remote engine's), the worker's side of its connection
    sends each small message at once, as the master's side does."""
    container = docker_client.containers.run(
        built_chain.reference("worker"), detach=True, name=container_name("worker"),
        network_mode="host",
        environment={"BUILDMASTER": "127.0.0.1", "BUILDMASTER_PORT": str(master.pb_port),
                     "WORKERNAME": "imgtest", "WORKERPASS": PASSWORD})
    try:
        master.wait_for(lambda: [w for w in master.api("workers")["workers"]
                                 if w["name"] == "imgtest" and w["connected_to"]],
                        "the worker to connect")
        pid, fd = socket_holder(remote_port=master.pb_port)
        assert container.id in Path(f"/proc/{pid}/cgroup").read_text()  # the worker's socket
        assert sends_without_delay(pid, fd)
        # The worker is the same: it builds.
        master.api("forceschedulers/force", {"jsonrpc": "2.0", "id": 1, "method": "force",
                                             "params": {"builderid": "1"}})
        build = master.wait_for(lambda: [b for b in master.api("builds")["builds"]
                                         if b["complete"]], "the build")[0]
        assert build["results"] == 0
    finally:
        container.remove(force=True)
