"""A full artifact store: a build whose files do not fit fails, saying that the store
is full, and ends; the release keeps the files it had, whole (its SHA256SUMS still
matches its archive); and once there is room again the next build stores its release.

The store is a 2 MiB tmpfs mounted in a mount namespace of the farm's own (``unshare``):
the farm's master and workers see it, the machine's own mounts are not touched. The
test fills and frees it from inside that namespace (``nsenter``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
import requests
from buildbot.process.results import FAILURE, SUCCESS

from rustfarm.cli.processes import read_pid
from tests.support.farm import EXAMPLE, FARM, RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET, require_cargo

pytestmark = pytest.mark.slow


def _namespaces_work() -> str | None:
    """Why a mount namespace with a tmpfs of its own cannot be made here, if it cannot."""
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        return "unshare and nsenter (util-linux) are not installed"
    tried = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True)
    if tried.returncode != 0:
        return f"cannot mount a tmpfs in a mount namespace: {tried.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def full_store_farm(tmp_path_factory):
    require_cargo()
    reason = _namespaces_work()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("full-store")
    store = root / "store"
    store.mkdir()
    farm = RunningFarm(root / "farm", f"artifacts: {{directory: {store}}}\n" + local_farm_yaml(
        f"  hello: {{source: {EXAMPLE}, binaries: [hello], test: false}}\n", workers=1))
    farm.store = store
    # `farm up` in a mount namespace of its own, where the store is a small tmpfs: the
    # master and the workers it starts stay in that namespace.
    started = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" --config "$3" up',
         "sh", str(store), str(FARM), str(farm.config)],
        capture_output=True, text=True, timeout=300, cwd=farm.directory)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield farm
    finally:
        farm.down()


def in_namespace(farm: RunningFarm, *command: str) -> subprocess.CompletedProcess:
    master = read_pid(farm.state / "master" / "twistd.pid")
    return subprocess.run(["nsenter", "--mount", "--target", str(master), *command],
                          capture_output=True, text=True, timeout=60)


def release_files(farm: RunningFarm, build: dict) -> dict[str, bytes]:
    return {url.rsplit("/", 1)[1]: requests.get(url, timeout=30).content
            for url in farm.artifact_urls(build)
            if url.endswith((".tar.gz", "/SHA256SUMS"))}


def check_whole(files: dict[str, bytes]) -> None:
    """The archive is the one SHA256SUMS names, byte for byte."""
    [(name, archive)] = [(n, b) for n, b in files.items() if n.endswith(".tar.gz")]
    digest, listed = files["SHA256SUMS"].decode().splitlines()[0].split()
    assert (listed, hashlib.sha256(archive).hexdigest()) == (name, digest)
    assert archive[:2] == b"\x1f\x8b"


def build(farm: RunningFarm) -> dict:
    [brid] = farm.force("force-hello", targets=[HOST_TARGET]).values()
    return farm.wait_for_build(brid, timeout=300)


def test_a_full_store_fails_the_build_and_keeps_the_release_whole(full_store_farm):
    farm = full_store_farm
    farm.login()
    first = build(farm)
    assert first["results"] == SUCCESS, farm.step_log(first, "package")
    stored = release_files(farm, first)
    check_whole(stored)

    # The store fills up (other projects' releases, a log gone wild).
    filled = in_namespace(farm, "sh", "-c", f'dd if=/dev/zero of="{farm.store}/filler" '
                                            "bs=64k 2>/dev/null; df -k " + str(farm.store))
    assert " 100% " in filled.stdout, filled.stdout + filled.stderr
    refused = build(farm)
    assert refused["results"] == FAILURE
    summaries = {s["name"]: s["state_string"] for s in farm.steps(refused)}
    assert any(text.startswith("artifact store full") for text in summaries.values()), \
        summaries
    # The release is the one the first build stored, whole: nothing truncated it.
    assert release_files(farm, first) == stored

    # Room again: the next build stores its release.
    freed = in_namespace(farm, "rm", "-f", str(farm.store / "filler"))
    assert freed.returncode == 0, freed.stderr
    again = build(farm)
    assert again["results"] == SUCCESS, farm.step_log(again, "package")
    check_whole(release_files(farm, again))
