"""An ec2 pool in farm.yaml: checked and turned into a master config with no AWS at all."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from rustfarm.farmfile import loads
from rustfarm.master.configuration import buildmaster_config

REPO = Path(__file__).resolve().parents[2]

EC2_FARM = """\
farm: {{name: cloud, master_address: 203.0.113.10, worker_host: 0.0.0.0}}
workers:
  cloud:
    kind: ec2
    region: eu-west-1
    ami_name: rustfarm-worker-*
    ami_owner: "123456789012"
    instance_type: c6i.large
    spot: true
    max_spot_price: 0.05
    max_instances: 3
    image_registry: registry.example.com:5000
    tags: {{team: embedded}}
targets:
  mipsel-unknown-linux-gnu: {{pool: cloud, image: "rustfarm/mipsel-unknown-linux-gnu:2026-11-21"}}
projects:
  hello: {{source: {src}}}
"""


def write_farm(tmp_path: Path) -> Path:
    path = tmp_path / "farm.yaml"
    path.write_text(EC2_FARM.format(src=REPO / "examples" / "hello"))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_aws_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    dead = f"http://127.0.0.1:{closed_port()}"
    env.update(AWS_ENDPOINT_URL_EC2=dead, AWS_EC2_METADATA_SERVICE_ENDPOINT=dead,
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               RUSTFARM_CONFIG=str(tmp_path / "farm.yaml"))
    return env


def test_farm_check_passes_without_credentials_or_network(tmp_path):
    write_farm(tmp_path)
    done = subprocess.run([str(Path(sys.executable).parent / "farm"), "--config",
                           str(tmp_path / "farm.yaml"), "check"],
                          capture_output=True, text=True, env=no_aws_env(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pools: cloud (ec2)" in done.stdout


def test_checkconfig_passes_without_credentials_or_network(tmp_path):
    write_farm(tmp_path)
    done = subprocess.run([str(Path(sys.executable).parent / "buildbot"), "checkconfig",
                           str(REPO / "master" / "master.cfg")], capture_output=True, text=True,
                          env=no_aws_env(tmp_path), timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pool_becomes_one_latent_worker_per_instance_and_a_reaper(tmp_path):
    farm = loads(write_farm(tmp_path).read_text(), tmp_path / "farm.yaml")
    config = buildmaster_config(farm)
    assert [w.name for w in config["workers"]] == ["cloud-1", "cloud-2", "cloud-3"]
    [reaper] = [s for s in config["services"] if type(s).__name__ == "FarmEC2Reaper"]
    assert {type(s).__name__ for s in config["services"]} == {"FarmEC2Reaper", "CompileJobs"}
    assert config["protocols"]["pb"]["port"].endswith("interface=0.0.0.0")


def test_ec2_pool_needs_master_address_and_registry(tmp_path):
    from rustfarm.farmfile import FarmFileError
    text = write_farm(tmp_path).read_text().replace(", master_address: 203.0.113.10", "")
    text = text.replace("    image_registry: registry.example.com:5000\n", "")
    try:
        loads(text, tmp_path / "farm.yaml")
    except FarmFileError as err:
        messages = [str(p) for p in err.problems]
    assert any("workers.cloud: an ec2 pool needs farm.master_address" in m for m in messages)
    assert any("workers.cloud.image_registry: missing required key" in m for m in messages)


LIMITS = """\
    memory: 6g
    cpus: 1.5
    pids_limit: 2048
    max_lifetime: 21600
    endpoint_url: https://ec2.eu-west-1.example.com
"""


def test_container_limits_lifetime_and_endpoint_reach_workers_and_reaper(tmp_path):
    text = write_farm(tmp_path).read_text().replace("    tags: {team: embedded}\n",
                                                    "    tags: {team: embedded}\n" + LIMITS)
    config = buildmaster_config(loads(text, tmp_path / "farm.yaml"))
    launch = config["workers"][0]._config_args[2]
    assert launch.user_data_options == {"memory": "6g", "cpus": 1.5, "pids_limit": 2048,
                                        "max_lifetime": 21600}
    assert launch.endpoint_url == "https://ec2.eu-west-1.example.com"
    assert launch.problems() == []
    [reaper] = [s for s in config["services"] if type(s).__name__ == "FarmEC2Reaper"]
    assert reaper._config_kwargs["endpoint_url"] == "https://ec2.eu-west-1.example.com"
    # The user-data an instance gets carries them, as the boot script reads them.
    from rustfarm.userdata import parse_user_data, render_user_data
    settings = parse_user_data(render_user_data(
        image="registry.example.com:5000/rustfarm/x:1", master="203.0.113.10", port=9989,
        name="cloud-1", password="pw", **launch.user_data_options))
    assert (settings.memory, settings.cpus, settings.pids_limit, settings.max_lifetime) == \
        ("6g", "1.5", 2048, 21600)


def refusals(tmp_path: Path, pool_lines: str) -> list[str]:
    """What `farm check` says of the example ec2 pool with ``pool_lines`` added."""
    from rustfarm.farmfile import FarmFileError
    text = write_farm(tmp_path).read_text().replace("    tags: {team: embedded}\n",
                                                    "    tags: {team: embedded}\n" + pool_lines)
    try:
        loads(text, tmp_path / "farm.yaml")
    except FarmFileError as err:
        return [str(p).replace(f"{tmp_path}/", "") for p in err.problems]
    raise AssertionError("loaded")


def test_limits_the_boot_script_would_refuse_are_refused_with_their_line(tmp_path):
    bad = LIMITS.replace("6g", "lots").replace("21600", "10").replace(
        "https://ec2.eu-west-1.example.com", "ftp://ec2")
    messages = refusals(tmp_path, bad)
    assert messages == [
        "farm.yaml:14: workers.cloud.memory: must be a whole number with an optional unit "
        "b, k, m or g (Docker's --memory), not 'lots'",
        "farm.yaml:17: workers.cloud.max_lifetime: must be at least 60, not 10 (seconds an "
        "instance may run its worker)",
        "farm.yaml:18: workers.cloud.endpoint_url: must be an http:// or https:// URL, not "
        "'ftp://ec2'"]


CACHE = """\
    compile_cache:
      bucket: farm-cache
      prefix: rustfarm/cloud/
      endpoint_url: http://127.0.0.1:9000
"""


def test_the_compile_cache_reaches_user_data_and_the_builds_environment(tmp_path):
    text = write_farm(tmp_path).read_text().replace("    tags: {team: embedded}\n",
                                                    "    tags: {team: embedded}\n" + CACHE)
    farm = loads(text, tmp_path / "farm.yaml")
    config = buildmaster_config(farm)
    launch = config["workers"][0]._config_args[2]
    assert launch.user_data_options == {
        "cache_bucket": "farm-cache", "cache_prefix": "rustfarm/cloud/",
        "cache_region": "eu-west-1", "cache_endpoint": "http://127.0.0.1:9000"}
    # The cargo steps' sccache reaches the bucket through the relay, with no credential.
    [builder] = [b for b in config["builders"] if b.name == "hello:mipsel-unknown-linux-gnu"]
    [cargo] = [s for s in builder.factory.steps if s.kwargs.get("name") == "cargo build"]
    env = cargo.kwargs["env"]
    assert (env["SCCACHE_BUCKET"], env["SCCACHE_S3_KEY_PREFIX"], env["SCCACHE_REGION"]) \
        == ("farm-cache", "rustfarm/cloud/", "eu-west-1")
    assert env["SCCACHE_S3_NO_CREDENTIALS"] == "true"
    assert env["SCCACHE_ENDPOINT"].startswith("http://127.0.0.1:")
    assert not [k for k in env if k.startswith("AWS_")]
    # Without compile_cache an ec2 pool's builds have none.
    plain = buildmaster_config(loads(write_farm(tmp_path).read_text(), tmp_path / "farm.yaml"))
    [builder] = [b for b in plain["builders"] if b.name == "hello:mipsel-unknown-linux-gnu"]
    [cargo] = [s for s in builder.factory.steps if s.kwargs.get("name") == "cargo build"]
    assert "SCCACHE_BUCKET" not in cargo.kwargs["env"]
    assert "cache_bucket" not in plain["workers"][0]._config_args[2].user_data_options


def test_a_compile_cache_the_boot_script_would_refuse_is_refused_with_its_line(tmp_path):
    bad = CACHE.replace("farm-cache", "Farm_Cache").replace("rustfarm/cloud/", "no-slash") \
        + "      colour: blue\n"
    messages = refusals(tmp_path, bad)
    assert messages == [
        "farm.yaml:15: workers.cloud.compile_cache.bucket: must be an S3 bucket name "
        "(3-63 of a-z 0-9 . -), not 'Farm_Cache'",
        "farm.yaml:16: workers.cloud.compile_cache.prefix: must be a key prefix such as farm/ "
        "(A-Z a-z 0-9 . _ - /, ending with /, no empty, . or .. part), not 'no-slash'",
        "farm.yaml:18: workers.cloud.compile_cache.colour: unknown key"]
