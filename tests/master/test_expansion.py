"""What farm.yaml expands to: builders, schedulers, workers and the web UI config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildbot.changes.gitpoller import GitPoller
from buildbot.schedulers.basic import AnyBranchScheduler
from buildbot.schedulers.forcesched import ForceScheduler
from buildbot.schedulers.timed import Nightly
from buildbot.secrets.providers.file import SecretInAFile
from buildbot.process.properties import Secret

from rustfarm.farmfile import load, loads
from rustfarm.master.configuration import buildmaster_config
from rustfarm.master.schedulers import TargetsForceScheduler

REPO = Path(__file__).resolve().parents[2]


def farm_with_two_projects(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    text = f"""\
farm: {{name: demo, worker_port: 19989}}
www: {{port: 18010, users: [alice, bob]}}
schedule: {{nightly: "02:30"}}
workers:
  local: {{kind: local, count: 3}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local, runner: native}}
  i686-unknown-linux-gnu: {{pool: local}}
projects:
  remote:
    source: https://example.invalid/remote.git
    branches: [main, stable]
    poll_interval: 30
  plain:
    source: {plain}
    targets: [i686-unknown-linux-gnu]
    profile: dev
"""
    return loads(text, tmp_path / "farm.yaml")


def test_one_builder_per_project_and_target(tmp_path):
    config = buildmaster_config(farm_with_two_projects(tmp_path))
    builders = {b.name: b for b in config["builders"]}
    assert sorted(builders) == ["plain:i686-unknown-linux-gnu", "remote:i686-unknown-linux-gnu",
                                "remote:x86_64-unknown-linux-gnu"]
    mipsish = builders["remote:i686-unknown-linux-gnu"]
    assert mipsish.tags == ["remote", "i686-unknown-linux-gnu", "i686", "local"]
    assert mipsish.workernames == ["local-1", "local-2", "local-3"]
    assert mipsish.properties["target"] == "i686-unknown-linux-gnu"
    assert builders["plain:i686-unknown-linux-gnu"].defaultProperties == {"profile": "dev"}


def test_tests_run_only_where_a_runner_exists(tmp_path):
    config = buildmaster_config(farm_with_two_projects(tmp_path))
    steps = {b.name: [s.step_class.__name__ + ":" + str(s.kwargs.get("name"))
                      for s in b.factory.steps] for b in config["builders"]}
    assert "Cargo:cargo test" in steps["remote:x86_64-unknown-linux-gnu"]
    assert "Cargo:cargo test" not in steps["remote:i686-unknown-linux-gnu"]
    assert steps["remote:x86_64-unknown-linux-gnu"][0] == "SnapshotSource:None"


def test_schedulers(tmp_path):
    config = buildmaster_config(farm_with_two_projects(tmp_path))
    by_name = {s.name: s for s in config["schedulers"]}
    # A project form that picks targets, and a force button on every builder page
    # (one scheduler per project: the page sends its builderid).
    assert isinstance(by_name["force-remote"], TargetsForceScheduler)
    assert sorted(by_name["force-remote"].builderNames) == [
        "remote:i686-unknown-linux-gnu", "remote:x86_64-unknown-linux-gnu"]
    for builder in ("remote:i686-unknown-linux-gnu", "plain:i686-unknown-linux-gnu"):
        forced = [s for s in config["schedulers"] if isinstance(s, ForceScheduler)
                  and s._config_kwargs["buttonName"] == "Force build" and builder in s.builderNames]
        assert len(forced) == 1, builder
    assert len([s for s in config["schedulers"] if isinstance(s, ForceScheduler)]) == 6
    params = {p.name for p in by_name["force-remote"]._config_kwargs["properties"]}
    assert {"targets", "profile"} <= params
    # `farm verify-build`'s: the project's targets, the release, a reproduction fixed by
    # the form.
    verify = {p.name: p for p in by_name["verify-remote"]._config_kwargs["properties"]}
    assert set(verify) == {"targets", "farm_release", "farm_reproduce"}
    assert verify["farm_reproduce"].default is True and "profile" not in verify
    # New commits build every target of a git project; a plain directory is not polled.
    commits = by_name["commits-remote"]
    assert isinstance(commits, AnyBranchScheduler)
    assert sorted(commits.builderNames) == sorted(by_name["force-remote"].builderNames)
    assert "commits-plain" not in by_name
    nightly = by_name["nightly-remote"]
    assert isinstance(nightly, Nightly)
    assert (nightly._config_kwargs["hour"], nightly._config_kwargs["minute"]) == (2, 30)
    pollers = config["change_source"]
    assert len(pollers) == 1 and isinstance(pollers[0], GitPoller)
    poller = pollers[0]._config_kwargs
    assert pollers[0]._config_args == ("https://example.invalid/remote.git",)
    assert poller["branches"] == ["main", "stable"] and poller["pollInterval"] == 30


def test_secrets_stay_out_of_the_config(tmp_path):
    farm = farm_with_two_projects(tmp_path)
    config = buildmaster_config(farm)
    for worker in config["workers"]:
        assert isinstance(worker.password, Secret)
    provider = config["secretsProviders"][0]
    assert isinstance(provider, SecretInAFile)
    assert config["www"]["auth"].users == {"alice", "bob"}
    assert config["www"]["port"] == "tcp:18010:interface=127.0.0.1"
    assert config["protocols"]["pb"]["port"] == "tcp:19989:interface=127.0.0.1"


def test_anonymous_users_read_and_logged_in_users_control(tmp_path):
    authz = buildmaster_config(farm_with_two_projects(tmp_path))["www"]["authz"]
    [rule] = authz.allowRules
    assert type(rule).__name__ == "AnyControlEndpointMatcher" and rule.role == "builders"
    [roles] = authz.roleMatchers
    assert roles.getRolesFromUser({"username": "alice"}) == ["builders"]
    assert roles.getRolesFromUser({"username": "mallory"}) == []


def test_checkconfig_passes_on_the_default_farm_without_secrets(tmp_path):
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([str(Path(sys.executable).parent / "buildbot"), "checkconfig",
                           str(REPO / "master" / "master.cfg")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Config file is good!" in done.stdout


def test_checkconfig_reports_farm_file_problems(tmp_path):
    bad = tmp_path / "farm.yaml"
    bad.write_text((REPO / "farm.yaml").read_text().replace("kind: local", "kind: lokal"))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "RUSTFARM_CONFIG": str(bad)}
    done = subprocess.run([str(Path(sys.executable).parent / "buildbot"), "checkconfig",
                           str(REPO / "master" / "master.cfg")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "workers.local.kind: unknown pool kind 'lokal'" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_farm_builders_prints_the_table():
    done = subprocess.run([str(Path(sys.executable).parent / "farm"), "builders", "--config",
                           str(REPO / "farm.yaml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["builder", "pool", "workers", "image"]
    mipsel = next(row for row in rows if row.startswith("hello:mipsel-unknown-linux-gnu "))
    assert "docker-1, docker-2" in mipsel and "rustfarm/mipsel-unknown-linux-gnu:1.96-" in mipsel
    assert len(rows) == 2 * len(load(REPO / "farm.yaml").targets)    # hello and compile


def test_default_farm_expands_to_every_target_of_the_table(tmp_path):
    from rustfarm.runtime import Runtime
    from rustfarm.targets import target_table
    farm = load(REPO / "farm.yaml")
    config = buildmaster_config(farm, Runtime())
    # A builder per target for the project, and one for uploads (all are in containers).
    assert sorted(b.name for b in config["builders"]) == \
        sorted(f"{project}:{t.triple}" for t in target_table()
               for project in ("hello", "compile"))
    mips = next(b for b in config["builders"] if b.name == "hello:mips-unknown-linux-musl")
    assert mips.properties["toolchain"] == "1.96"
    assert mips.properties["image"].startswith("rustfarm/mips-unknown-linux-musl:1.96-")
    # Without Docker only the host's target is left, on the local pool.
    config = buildmaster_config(farm, Runtime(docker=False, docker_off_reason="none"))
    assert [(b.name, b.workernames) for b in config["builders"]] == [
        ("hello:x86_64-unknown-linux-gnu", ["local-1"])]


def test_a_project_named_like_its_pool_gets_each_tag_once(tmp_path):
    farm = loads(f"""\
farm: {{name: demo}}
workers: {{local: {{kind: local}}}}
targets: {{x86_64-unknown-linux-gnu: {{pool: local}}}}
projects: {{local: {{source: {tmp_path}}}}}
""", tmp_path / "farm.yaml")
    [builder] = buildmaster_config(farm)["builders"]
    assert builder.tags == ["local", "x86_64-unknown-linux-gnu", "x86_64"]
