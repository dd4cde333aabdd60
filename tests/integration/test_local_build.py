"""A real master and local workers build the example; the artifact is real and downloadable."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import requests
from elftools.elf.elffile import ELFFile

from rustfarm.cli.processes import process_alive
from rustfarm.worker_tool_file import INFO_KEY, TOOL_NAME, tool_digest
from tests.support.farm import RunningFarm, local_farm_yaml, pids_alive, wait_until

from .conftest import EXAMPLE, HOST_TARGET, require_cargo


def test_forced_build_over_rest_gives_a_working_artifact(example_farm, tmp_path):
    farm = example_farm
    farm.login()
    [(builder, brid)] = farm.force("force-hello", targets=[HOST_TARGET], branch="main",
                                   revision="", profile="release").items()
    assert builder == f"hello:{HOST_TARGET}"
    build = farm.wait_for_build(brid)
    assert build["results"] == 0, farm.step_log(build, "cargo build")
    names = [s["name"] for s in farm.steps(build)]
    assert names.index("cargo build") < names.index("cargo test") < names.index("package")
    assert "test result: ok" in farm.step_log(build, "cargo test")
    # The worker runs the farm's own copy of the tool, the snapshot on its standard input.
    fetch = farm.step_log(build, "fetch source")
    assert f"/{TOOL_NAME} unpack - " in fetch and "bytes to stdin" in fetch

    urls = farm.artifact_urls(build)
    [archive_url] = [u for u in urls if u.endswith(".tar.gz")]
    [sums_url] = [u for u in urls if u.endswith("/SHA256SUMS")]
    [release_url] = [u for u in urls if u.endswith("/")]
    assert release_url.endswith(f"/plugins/artifacts/hello/{archive_url.split('/')[-3]}/")
    revision = archive_url.split("/")[-3]
    assert archive_url == (f"{farm.url}plugins/artifacts/hello/{revision}/{HOST_TARGET}/"
                           f"hello-{revision}-{HOST_TARGET}.tar.gz")
    archive = requests.get(archive_url, timeout=30)
    archive.raise_for_status()
    sums = requests.get(sums_url, timeout=30).text.splitlines()
    assert sums[0] == f"{hashlib.sha256(archive.content).hexdigest()}  {archive_url.split('/')[-1]}"
    # Signed, with the Debian package of the binary (amd64), its SBOM and provenance.
    assert [line.split("  ")[1] for line in sums[1:]] == [
        "Cargo.lock", f"hello_0.1.0+{revision}_amd64.deb", "sbom.cdx.json",
        "provenance.intoto.json"]
    keys = tmp_path / "keys.pub"
    keys.write_text(requests.get(f"{farm.url}plugins/artifacts/release-keys.pub", timeout=30).text)
    verified = farm.farm("verify", release_url, "--key", str(keys))
    assert f"verified {HOST_TARGET}: 5 files" in verified.stdout
    assert (farm.state / "artifacts" / "hello" / revision / HOST_TARGET / "SHA256SUMS").exists()

    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        tar.extractall(tmp_path, filter="data")
    binary = tmp_path / "hello"
    with binary.open("rb") as handle:
        elf = ELFFile(handle)
        assert (elf.header["e_machine"], elf.elfclass, elf.little_endian) == ("EM_X86_64", 64, True)
    ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert ran.stdout == "Hello from rustfarm on x86_64!\n"


def test_build_properties_name_project_target_and_revision(example_farm):
    farm = example_farm
    farm.login()
    [brid] = farm.force("force-hello", targets=[HOST_TARGET]).values()
    build = farm.wait_for_build(brid)
    props = farm.api(f"builds/{build['buildid']}", property="*")["builds"][0]["properties"]
    assert props["project"][0] == "hello" and props["target"][0] == HOST_TARGET
    assert props["arch"][0] == "x86_64" and len(props["got_revision"][0]) == 64


def test_anonymous_users_cannot_force(example_farm):
    import requests as plain
    body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": {}}
    reply = plain.post(f"{example_farm.url}api/v2/forceschedulers/force-hello", json=body,
                       timeout=30)
    assert reply.status_code == 403


def test_wrong_password_is_refused(example_farm):
    reply = requests.get(f"{example_farm.url}auth/login", auth=("admin", "wrong-password"),
                         timeout=30)
    assert reply.status_code == 401


def test_farm_build_waits_prints_progress_and_artifacts(example_farm):
    done = example_farm.farm("build", "hello", "--target", HOST_TARGET, "--wait")
    out = done.stdout
    assert f"hello:{HOST_TARGET}: build #" in out
    assert "cargo build: success" in out and "cargo test: success" in out
    assert f"hello:{HOST_TARGET}: success" in out
    assert f"artifact: {example_farm.url}plugins/artifacts/hello/" in out


def test_farm_build_rejects_unknown_project_and_target(example_farm):
    done = example_farm.farm("build", "helo", check=False)
    assert done.returncode == 1
    assert done.stderr == ("farm: no project 'helo' in farm.yaml (did you mean 'hello'?); "
                           "projects: hello\n")
    done = example_farm.farm("build", "hello", "--target", "mipsel-unknown-linux-gnu", check=False)
    assert done.returncode == 1 and "is not built for target 'mipsel-unknown-linux-gnu'" in done.stderr


def test_up_is_idempotent_and_status_reports(example_farm):
    again = example_farm.farm("up")
    assert "master already running" in again.stdout
    status = example_farm.farm("status").stdout
    assert "master: running" in status and "answers" in status
    assert "worker local-1: pid" in status and "connected" in status


def test_secrets_never_reach_logs_or_properties(example_farm):
    farm = example_farm
    secrets = [p.read_text().strip() for p in (farm.state / "secrets").iterdir()]
    assert secrets
    logs = [farm.state / "master" / "twistd.log",
            *sorted((farm.state / "workers").glob("*/twistd.log"))]
    for log in logs:
        text = log.read_text()
        for secret in secrets:
            assert secret not in text, f"a secret appears in {log}"
    farm.login()
    for build in farm.api("builds", property="*")["builds"]:
        for secret in secrets:
            assert secret not in str(build["properties"])
    for step_build in farm.api("builds")["builds"]:
        for step in farm.steps(step_build):
            for log in ("stdio",):
                try:
                    text = farm.step_log(step_build, step["name"])
                except Exception:
                    continue
                assert not any(secret in text for secret in secrets)


def test_down_stops_exactly_what_up_started(tmp_path_factory):
    from tests.support.farm import EXAMPLE, RunningFarm
    farm = RunningFarm(tmp_path_factory.mktemp("updown"), f"""\
workers:
  local: {{kind: local, count: 1}}
targets:
  {HOST_TARGET}: {{pool: local, runner: native}}
projects:
  hello: {{source: {EXAMPLE}}}
""").up()
    pidfiles = [farm.state / "master" / "twistd.pid", farm.state / "workers" / "local-1" / "twistd.pid"]
    pids = pids_alive(pidfiles)
    assert len(pids) == 2
    down = farm.farm("down").stdout
    assert "stopped local worker local-1" in down and "stopped the master" in down
    assert pids_alive(pidfiles) == []
    for pid in pids:
        assert not process_alive(pid)
    assert "was not running" in farm.farm("down").stdout


def test_a_worker_with_another_version_of_the_tool_is_sent_this_one(tmp_path):
    """As a worker started from an image built before the tool last changed: its info
    names another digest, so the master sends its tool into the build's directory
    once (and the source tarball by a download of its own), and the build works all
    the same."""
    require_cargo()
    farm = RunningFarm(tmp_path / "farm", local_farm_yaml(f"""\
  hello:
    source: {EXAMPLE}
    binaries: [hello]
""", workers=1))
    try:
        farm.up()
        farm.login()
        [basedir] = [d for d in (farm.state / "workers").iterdir() if (d / "info").is_dir()]
        (basedir / "info" / INFO_KEY).write_text(f"{'0' * 64} {basedir / TOOL_NAME}\n")
        restart = subprocess.run([str(Path(sys.executable).with_name("buildbot-worker")),
                                  "restart", "--quiet", str(basedir)],
                                 capture_output=True, text=True, timeout=120)
        assert restart.returncode == 0, restart.stdout + restart.stderr
        # The master reads a worker's info as it attaches (its REST API shows only some).
        wait_until(lambda: (basedir / "twistd.log").read_text().count(
            "Connected to buildmaster; worker is ready") == 2, 60, "the worker to reconnect")
        [brid] = farm.force("force-hello", targets=[HOST_TARGET]).values()
        build = farm.wait_for_build(brid)
        assert build["results"] == 0, farm.step_log(build, "cargo build")
        # The master's copy, sent into the build's directory once, runs every command.
        sent = f"/build/.rustfarm-tool-{tool_digest()[:16]}.pyz"
        fetch = farm.step_log(build, "fetch source")
        assert f"{sent} unpack source.tar.gz " in fetch and '"written"' in fetch
        assert f"{sent} toolchain " in farm.step_log(build, "toolchain")
        assert f"{sent} package " in farm.step_log(build, "package")
        assert farm.artifact_urls(build)
    finally:
        farm.down()
