"""A hostile build cannot leave its container: its build script tries the
worker's memory, environment and files, the host and the network, and the
tests assert it found nothing but the master's worker socket."""

from __future__ import annotations

import io
import re
import tarfile

import pytest
import requests

from .conftest import OLD_RUST

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def attack(docker_farm):
    farm = docker_farm
    farm.login()
    [brid] = farm.force("force-escape", targets=[OLD_RUST]).values()
    build = farm.wait_for_build(brid, timeout=600)
    assert build["results"] == 0, farm.step_log(build, "cargo build")[-3000:]
    log = farm.step_log(build, "cargo build")
    findings = re.findall(r"rustfarm-probe: (.*)$", log, re.MULTILINE)
    assert findings, log[-3000:]
    [archive] = [u for u in farm.artifact_urls(build) if u.endswith(".tar.gz")]
    reply = requests.get(archive, timeout=60)
    reply.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
        binary = tar.extractfile("escape").read()
    return farm, build, findings, log, binary


def worker_passwords(farm) -> list[str]:
    return [path.read_text().strip() for path in (farm.state / "secrets").glob("worker-*")]


def test_the_build_cannot_read_the_workers_memory_or_environment(attack):
    _, _, findings, _, _ = attack
    processes = [line for line in findings if line.startswith("process ")]
    # The worker is twistd (its parent, tini, names it on its command line but
    # never held the password).
    worker = [line for line in processes
              if re.match(r"process \d+ \[\S*python3? \S*twistd ", line)]
    assert worker, processes
    for line in worker:
        assert "environ unreadable" in line and "memory bytes read 0" in line, line
    assert not [line for line in processes if "password variable FOUND" in line]
    assert "own environment password variable: absent" in findings
    for path in ("/home/rustbuild/worker/.workerpass", "/run/rustfarm-worker/password"):
        assert f"file {path}: absent" in findings


def test_no_password_reaches_the_log_or_the_artifact(attack):
    farm, _, _, log, binary = attack
    passwords = worker_passwords(farm)
    assert passwords
    for password in passwords:
        assert password not in log
        assert password.encode() not in binary


def test_only_the_masters_worker_socket_is_reachable(attack):
    farm, _, findings, _, _ = attack
    tcp = [line for line in findings if line.startswith("tcp ")]
    assert len(tcp) >= 30
    assert not [line for line in tcp if "CONNECTED" in line]
    assert f"tcp 172.17.0.1:{farm.www_port}: refused" in "\n".join(tcp)
    assert "unix /run/rustfarm/worker.sock: CONNECTED" in findings
    assert "network interfaces: lo" in findings


def test_the_build_has_no_privileges_and_a_pids_limit(attack):
    _, _, findings, _, _ = attack
    assert "CapEff: 0000000000000000" in findings
    assert "NoNewPrivs: 1" in findings
    [pids] = [line for line in findings if line.startswith("pids.max: ")]
    assert pids.split(": ")[1].isdigit()
