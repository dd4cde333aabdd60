"""ami/rustfarm-boot run for real: fake IMDSv2, real Docker engine, real registry.

Every boot gets a recorder in place of poweroff; each case ends within seconds.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.registry import free_port
from tests.support.sockets import sends_without_delay, socket_holder

from . import harness

pytestmark = pytest.mark.docker

WORKER_ENV = {"BUILDMASTER", "BUILDMASTER_PORT", "WORKERNAME", "RUSTFARM_WORKERPASS_FILE"}


def image_is_local(reference: str) -> bool:
    found = subprocess.run([harness.docker_cli(), "image", "inspect", reference],
                           capture_output=True)
    return found.returncode == 0


def tiny_worker_report(output: str) -> list[str]:
    prefix = "tiny-worker: "
    return [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]


def assert_powered_off_once(instance: harness.FakeInstance, reason: str) -> None:
    assert len(instance.poweroff.calls()) == 1, instance.output
    assert reason in instance.output
    assert any(reason in message for message in instance.syslog)
    assert reason in instance.console
    assert not harness.container_exists(instance.container_name)


def test_fake_imds_requires_a_token():
    with harness.FakeImds("#rustfarm-worker v1\n") as imds:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{imds.url}/latest/user-data", timeout=5)
        assert refused.value.code == 401
        token_request = urllib.request.Request(
            f"{imds.url}/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        token = urllib.request.urlopen(token_request, timeout=5).read().decode()
        with_token = urllib.request.Request(f"{imds.url}/latest/user-data",
                                            headers={"X-aws-ec2-metadata-token": token})
        assert urllib.request.urlopen(with_token, timeout=5).read() == b"#rustfarm-worker v1\n"


def test_happy_path_pulls_runs_and_powers_off(tiny_worker_images, tmp_path):
    image = tiny_worker_images()
    harness.remove_local_image(image)
    assert not image_is_local(image)
    password = f"pw-{secrets.token_hex(8)}"
    user_data = harness.user_data_text(image, "127.0.0.1", 9989, "ec2-tiny-1", password)

    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert instance.wait(60) == 0, instance.output
        output = instance.output

        assert image_is_local(image), "the image should have been pulled from the registry"
        report = tiny_worker_report(output)
        env_names = {line.split(" ", 1)[1] for line in report if line.startswith("env ")}
        assert WORKER_ENV <= env_names
        assert "WORKERPASS" not in env_names
        assert "BUILDMASTER=127.0.0.1" in report
        assert "BUILDMASTER_PORT=9989" in report
        assert "WORKERNAME=ec2-tiny-1" in report
        assert f"WORKERPASS sha256 {hashlib.sha256(password.encode()).hexdigest()}" in report
        # No network in the container (no metadata service, no host): only a
        # socket that socat forwards to the master's worker port.
        assert "interfaces lo " in report
        assert "master socket /run/rustfarm/worker.sock" in report
        assert "--network none --cap-drop ALL --security-opt no-new-privileges" in output

        assert output.index("tiny-worker: exiting with status 0") < output.index("powering off")
        assert_powered_off_once(instance, "done: the worker exited normally")
        assert [(method, path, status) for method, path, status in instance.imds.requests] == [
            ("PUT", "/latest/api/token", 200), ("GET", "/latest/user-data", 200)]
        for step in ("Docker engine", "reading user-data", "pulling", "pulled",
                     "starting worker", "powering off"):
            assert any(step in message for message in instance.syslog), step


def test_docker_limits_from_user_data(tiny_worker_images, tmp_path):
    user_data = harness.user_data_text(tiny_worker_images(), "127.0.0.1", 9989, "ec2-tiny-2",
                                       "secret-2", memory="256m", cpus="0.5", pids_limit="100")
    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert instance.wait(60) == 0, instance.output
        assert "--memory 256m --cpus 0.5 --pids-limit 100" in instance.output
        assert "tiny-worker: exiting with status 0" in instance.output
        assert_powered_off_once(instance, "done: the worker exited normally")


def test_password_never_in_output_syslog_or_ps(tiny_worker_images, tmp_path):
    marker = tmp_path / "evaluated"
    # Shell syntax in the password must reach the worker as plain text.
    password = f"pw {secrets.token_hex(8)} $(touch {marker}) `touch {marker}`; '\"\\"
    user_data = harness.user_data_text(tiny_worker_images(hold_seconds=2), "127.0.0.1", 9989,
                                       "ec2-tiny-3", password)
    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert harness.wait_for(lambda: "tiny-worker: started" in instance.output, 30), \
            instance.output
        command_lines = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                command_lines.append(cmdline.read_bytes())
            except OSError:
                continue   # the process ended meanwhile
        assert not [line for line in command_lines if password.encode() in line]
        # Nor in the container's configuration, nor in any process's environment.
        inspected = subprocess.run([harness.docker_cli(), "inspect", instance.container_name],
                                   capture_output=True, text=True)
        assert instance.container_name in inspected.stdout, inspected.stderr
        assert password not in inspected.stdout
        assert "/run/rustfarm-worker/password" in inspected.stdout
        environments = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                environments.append(environ.read_bytes())
            except OSError:
                continue
        assert not [env for env in environments if password.encode() in env]
        assert instance.wait(60) == 0, instance.output
        assert not (instance.run_dir / "secret").exists()

        digest = hashlib.sha256(password.encode()).hexdigest()
        assert f"tiny-worker: WORKERPASS sha256 {digest}" in instance.output
        assert not marker.exists()
        assert password not in instance.output
        assert not [message for message in instance.syslog if password in message]
        assert password not in " ".join(instance.poweroff.calls())


def test_imds_down_retries_then_powers_off(docker_engine, tmp_path):
    dead_imds = f"http://127.0.0.1:{free_port()}"
    instance = harness.boot_instance(None, {
        "RUSTFARM_IMDS_URL": dead_imds, "RUSTFARM_IMDS_ATTEMPTS": "3",
        "RUSTFARM_BACKOFF_START": "1", "RUSTFARM_BACKOFF_MAX": "2"}, workdir=tmp_path)
    with instance:
        assert instance.wait(30) == 1, instance.output
        output = instance.output
        for attempt in (1, 2, 3):
            assert f"reading user-data failed (attempt {attempt} of 3): no IMDSv2 token from " \
                   f"{dead_imds}" in output
        assert "retrying in 1s" in output and "retrying in 2s" in output
        assert "Failed to connect" in output
        assert "pulling" not in output
        assert_powered_off_once(instance, "giving up: could not read user-data")


def test_imds_not_ready_at_first_is_retried(tiny_worker_images, tmp_path):
    user_data = harness.user_data_text(tiny_worker_images(), "127.0.0.1", 9989, "ec2-tiny-4",
                                       "secret-4")
    imds = harness.FakeImds(user_data, unready_requests=2).start()
    with harness.boot_instance(None, workdir=tmp_path, imds=imds) as instance:
        assert instance.wait(60) == 0, instance.output
        assert "(attempt 2 of 3): no IMDSv2 token" in instance.output
        assert "HTTP 503" in instance.output
        assert_powered_off_once(instance, "done: the worker exited normally")


def test_instance_without_user_data_powers_off_at_once(docker_engine, tmp_path):
    with harness.boot_instance(None, workdir=tmp_path) as instance:
        assert instance.wait(30) == 1, instance.output
        assert "(attempt 1 of 3): this instance has no user-data" in instance.output
        assert "attempt 2 of 3" not in instance.output
        assert_powered_off_once(instance, "giving up: could not read user-data")


@pytest.mark.parametrize("user_data, problem", [
    ("image=127.0.0.1:5000/a/b:c\n",
     "line 1: user-data must start with the line '#rustfarm-worker v1'"),
    ("#rustfarm-worker v1\nimage=127.0.0.1:5000/a/b:c\nmaster=m\nport=1\nname=n\n"
     "password=not-so-secret\ncolour=blue\n",
     "line 7: unknown key 'colour'"),
    ("#rustfarm-worker v1\nimage=127.0.0.1:5000/a/b:c\nmaster=m\nport=1\nname=n\n",
     "missing key 'password'"),
    ("#rustfarm-worker v1\nimage=127.0.0.1:5000/a/b:c\nmaster=m\nport=99999\nname=n\n"
     "password=not-so-secret\n",
     "key 'port' must be a TCP port number (1-65535), not '99999'"),
], ids=["no-marker", "unknown-key", "missing-key", "bad-port"])
def test_malformed_user_data_is_logged_and_powers_off(docker_engine, tmp_path, user_data,
                                                      problem):
    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert instance.wait(30) == 1, instance.output
        assert f"user-data: {problem}" in instance.output
        assert f"user-data: {problem}" in instance.syslog
        assert "pulling" not in instance.output
        assert_powered_off_once(instance, "giving up: user-data is invalid")


def test_image_missing_from_registry_retries_pull_then_powers_off(registry, tmp_path):
    missing = f"{registry.address}/{harness.TINY_WORKER_REPOSITORY}:never-pushed"
    user_data = harness.user_data_text(missing, "127.0.0.1", 9989, "ec2-tiny-5", "secret-5")
    instance = harness.boot_instance(user_data, {"RUSTFARM_PULL_ATTEMPTS": "2",
                                                 "RUSTFARM_BACKOFF_START": "1",
                                                 "RUSTFARM_BACKOFF_MAX": "1"},
                                     workdir=tmp_path)
    with instance:
        assert instance.wait(60) == 1, instance.output
        output = instance.output
        assert f"pulling {missing} failed (attempt 1 of 2)" in output
        assert f"pulling {missing} failed (attempt 2 of 2)" in output
        assert "retrying in 1s" in output
        assert "starting worker" not in output
        assert_powered_off_once(instance, f"giving up: could not pull {missing}")


def test_worker_failure_is_logged_and_powers_off(tiny_worker_images, tmp_path):
    user_data = harness.user_data_text(tiny_worker_images(exit_status=3), "127.0.0.1", 9989,
                                       "ec2-tiny-6", "secret-6")
    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert instance.wait(60) == 1, instance.output
        assert_powered_off_once(instance, "giving up: the worker exited with status 3")


def test_docker_engine_that_never_answers_powers_off(docker_engine, tmp_path):
    instance = harness.boot_instance(None, {
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "RUSTFARM_DOCKER_WAIT": "2"},
        workdir=tmp_path)
    with instance:
        assert instance.wait(30) == 1, instance.output
        assert "giving up: the Docker engine did not answer within 2s" in instance.output
        assert instance.imds.requests == []
        assert len(instance.poweroff.calls()) == 1


def test_max_lifetime_stops_the_worker_and_powers_off(tiny_worker_images, tmp_path):
    user_data = harness.user_data_text(tiny_worker_images(hold_seconds=60), "127.0.0.1", 9989,
                                       "ec2-tiny-7", "secret-7", max_lifetime="1")
    instance = harness.boot_instance(user_data, {"RUSTFARM_STOP_TIMEOUT": "1"},
                                     workdir=tmp_path)
    with instance:
        assert instance.wait(30) == 1, instance.output
        assert "the worker reached max_lifetime (1s); stopping it" in instance.output
        assert "tiny-worker: exiting" not in instance.output
        assert_powered_off_once(
            instance, "giving up: the worker ran for its max_lifetime (1s) and was stopped")


def test_sigterm_stops_the_boot_without_power_off(tiny_worker_images, tmp_path):
    user_data = harness.user_data_text(tiny_worker_images(hold_seconds=2), "127.0.0.1", 9989,
                                       "ec2-tiny-8", "secret-8")
    with harness.boot_instance(user_data, workdir=tmp_path) as instance:
        assert harness.wait_for(lambda: "tiny-worker: started" in instance.output, 30), \
            instance.output
        os.kill(instance.process.pid, signal.SIGTERM)
        assert instance.wait(30) == 1, instance.output
        assert "stopped by SIGTERM; not powering off" in instance.output
        # The worker is left running for whoever wants to look at it.
        assert harness.container_exists(instance.container_name)
        assert harness.wait_for(lambda: "tiny-worker: exiting" in instance.output, 30)
        assert not instance.powered_off


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_the_worker_socket_reaches_the_master_without_nagle(tiny_worker_images, tmp_path):
    # socat forwards the container's worker socket to the master's worker port: its TCP
    # side sends each of the worker's small messages at once, where Nagle's algorithm
    # would hold one back until the master's delayed acknowledgement (up to 40 ms, on
    # every round trip of a build). The master is a plain listener here.
    with socket.create_server(("127.0.0.1", 0)) as master:
        master.settimeout(30)
        user_data = harness.user_data_text(tiny_worker_images(hold_seconds=20), "127.0.0.1",
                                           master.getsockname()[1], "ec2-tiny-9", "secret-9")
        with harness.boot_instance(user_data, workdir=tmp_path) as instance:
            assert harness.wait_for(lambda: "tiny-worker: started" in instance.output, 60), \
                instance.output
            # As the worker in the container connects: through the instance's socket.
            with socket.socket(socket.AF_UNIX) as worker:
                worker.connect(str(instance.run_dir / "socket" / "worker.sock"))
                connection, (_, port) = master.accept()
                with connection:
                    assert sends_without_delay(*socket_holder(local_port=port))
                    # What the kernel says by default (the master's side, as accepted).
                    assert not sends_without_delay(os.getpid(), connection.fileno())


STAND_IN_RELAY = """#!/usr/bin/python3
import signal, socket, sys
from pathlib import Path
record = Path(sys.argv[0] + ".record")
record.write_text(" ".join(sys.argv[1:]) + "\\n")
signal.signal(signal.SIGTERM, lambda *_: (record.write_text(record.read_text() + "stopped\\n"),
                                          sys.exit(0)))
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[sys.argv.index("--socket") + 1])
server.listen()
signal.pause()
"""


@pytest.mark.parametrize("relay_starts", [True, False], ids=["relay", "relay-fails"])
def test_a_compile_cache_starts_the_relay_beside_the_worker(tiny_worker_images, tmp_path,
                                                            relay_starts):
    relay = tmp_path / "relay"
    relay.write_text(STAND_IN_RELAY if relay_starts else "#!/bin/sh\nexit 1\n")
    relay.chmod(0o755)
    user_data = harness.user_data_text(
        tiny_worker_images(), "127.0.0.1", 9989, "ec2-tiny-10", "secret-10",
        cache_bucket="farm-cache", cache_prefix="farm/", cache_region="eu-west-1",
        cache_read_only="yes")
    with harness.boot_instance(user_data, {"RUSTFARM_CACHE_RELAY": str(relay)},
                               workdir=tmp_path / "boot") as instance:
        assert instance.wait(60) == 0, instance.output
        report = tiny_worker_report(instance.output)
        assert_powered_off_once(instance, "done: the worker exited normally")
        if not relay_starts:
            assert "the compile cache relay did not start; building without the compile " \
                   "cache" in instance.output
            assert "env RUSTFARM_CACHE_SOCKET" not in report
            return
        cache = instance.run_dir / "cache"
        assert (tmp_path / "relay.record").read_text().splitlines()[0] == (
            f"--socket {cache}/relay.sock --bucket farm-cache --prefix farm/ "
            "--region eu-west-1 --read-only")
        assert "compile cache: s3://farm-cache/farm/ through the relay" in instance.output
        assert (f"-v {cache}:/run/rustfarm-cache:ro "
                "-e RUSTFARM_CACHE_SOCKET=/run/rustfarm-cache/relay.sock") in instance.output
        assert "env RUSTFARM_CACHE_SOCKET" in report
        assert harness.wait_for(
            lambda: "stopped" in (tmp_path / "relay.record").read_text(), 10)
