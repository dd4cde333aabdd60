"""A docker pool on several engines: docker_hosts, their TLS directories, and what
`farm check` refuses about them (each one line with file, line and key)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from rustfarm.farmfile import FarmFileError, loads
from rustfarm.farmfile.pool_kinds import DockerEngine, is_loopback_engine

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"


def farm_yaml(pool: str, farm: str = "") -> str:
    """A farm whose pool dk is ``pool`` (a flow mapping, or block lines)."""
    pool = textwrap.dedent(pool)
    body = (" " + pool.strip() + "\n") if pool.startswith("{") else \
        "\n" + textwrap.indent(pool, "    ")
    return (f"farm:\n  name: demo\n{farm}workers:\n  dk:{body}"
            "targets:\n  x86_64-unknown-linux-gnu: {pool: dk, image: "
            "\"rustfarm/x86_64-unknown-linux-gnu:1.96-x\"}\n"
            f"projects:\n  hello: {{source: {EXAMPLE}}}\n")


def problems(path: Path, text: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        loads(text, path)
    return [str(p) for p in caught.value.problems]


def tls_dir(path: Path, files=("ca.pem", "cert.pem", "key.pem")) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in files:
        (path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_workers_are_spread_round_robin_over_the_engines(tmp_path):
    tls = tls_dir(tmp_path / "certs" / "second")
    farm = loads(farm_yaml("""\
        kind: docker
        count: 5
        docker_hosts:
          - unix:///var/run/docker.sock
          - {url: "tcp://127.0.0.1:2376", tls: certs/second}
        """), tmp_path / "farm.yaml")
    pool = farm.pools["dk"]
    assert pool.engines == (DockerEngine("unix:///var/run/docker.sock"),
                            DockerEngine("tcp://127.0.0.1:2376", str(tls)))
    assert [e.url for e in pool.worker_engines().values()] == [
        "unix:///var/run/docker.sock", "tcp://127.0.0.1:2376"] * 2 + [
        "unix:///var/run/docker.sock"]
    # Both engines are on this machine: no master_address needed, no network.
    assert not pool.remote and pool.local
    assert pool.engine == "unix:///var/run/docker.sock"


def test_a_single_engine_is_the_pools_only_engine(tmp_path):
    farm = loads(farm_yaml("{kind: docker, count: 2}"), tmp_path / "farm.yaml")
    assert farm.pools["dk"].engines == (DockerEngine("unix:///var/run/docker.sock"),)
    tls = tls_dir(tmp_path / "tls")
    farm = loads(farm_yaml(f"{{kind: docker, docker_host: 'tcp://10.0.0.5:2376', "
                           f"docker_tls: {tls}}}", farm="  master_address: 10.0.0.1\n"),
                 tmp_path / "farm.yaml")
    assert farm.pools["dk"].engines == (DockerEngine("tcp://10.0.0.5:2376", str(tls)),)
    assert farm.pools["dk"].remote


@pytest.mark.parametrize("url, here", [
    ("unix:///var/run/docker.sock", True),
    ("tcp://127.0.0.1:2376", True),
    ("tcp://127.8.9.1:2376", True),
    ("tcp://localhost:2376", True),
    ("tcp://[::1]:2376", True),
    ("tcp://10.0.0.5:2376", False),
    ("tcp://build2.example:2376", False),
    ("ssh://farm@build2.example", False),
])
def test_loopback_engines_are_on_this_machine(url, here):
    assert is_loopback_engine(url) is here


def test_a_remote_engine_among_several_needs_the_master_address(tmp_path):
    config = tmp_path / "farm.yaml"
    assert problems(config, farm_yaml("""\
        kind: docker
        docker_hosts: [unix:///var/run/docker.sock, "ssh://farm@build2.example"]
        """)) == [f"{config}:3: workers.dk.docker_hosts: a remote Docker engine needs "
                  "farm.master_address: the address its containers reach the master at"]


def test_refused_engine_lists(tmp_path):
    config = tmp_path / "farm.yaml"
    tls_dir(tmp_path / "partial", files=("ca.pem",))
    found = problems(config, farm_yaml(f"""\
        kind: docker
        count: 8
        docker_hosts:
          - unix:///var/run/docker.sock
          - http://build2:2375
          - tcp://127.0.0.1
          - unix:///var/run/docker.sock
          - {{url: "tcp://127.0.0.1:2376", tls: {tmp_path / 'nowhere'}}}
          - {{url: "tcp://127.0.0.1:2377", tls: partial}}
          - {{url: "unix:///run/other.sock", tls: partial}}
          - {{url: "tcp://127.0.0.1:2378", tsl: partial}}
        """))
    assert found == [
        f"{config}:9: workers.dk.docker_hosts[1]: must be a unix://, tcp:// or ssh:// URL, "
        "not 'http://build2:2375'",
        f"{config}:10: workers.dk.docker_hosts[2]: must be tcp://HOST:PORT, not "
        "'tcp://127.0.0.1'",
        f"{config}:11: workers.dk.docker_hosts[3]: unix:///var/run/docker.sock is listed "
        "twice (also workers.dk.docker_hosts[0])",
        f"{config}:12: workers.dk.docker_hosts[4].tls: {tmp_path / 'nowhere'} is not a "
        "directory (it holds ca.pem, cert.pem, key.pem, as DOCKER_CERT_PATH does)",
        f"{config}:13: workers.dk.docker_hosts[5].tls: partial lacks cert.pem, key.pem (a "
        "Docker client's TLS directory holds ca.pem, cert.pem, key.pem)",
        f"{config}:14: workers.dk.docker_hosts[6].tls: only a tcp:// engine is spoken to "
        "with TLS",
        f"{config}:14: workers.dk.docker_hosts[6].tls: partial lacks cert.pem, key.pem (a "
        "Docker client's TLS directory holds ca.pem, cert.pem, key.pem)",
        f"{config}:15: workers.dk.docker_hosts[7].tsl: unknown key",
    ]


def test_docker_host_and_docker_hosts_exclude_each_other(tmp_path):
    config = tmp_path / "farm.yaml"
    assert problems(config, farm_yaml("""\
        kind: docker
        docker_host: unix:///var/run/docker.sock
        docker_hosts: [unix:///var/run/docker.sock]
        """)) == [f"{config}:7: workers.dk.docker_hosts: give docker_host (one engine) or "
                  "docker_hosts (several), not both"]


def test_more_engines_than_workers_and_empty_lists_are_refused(tmp_path):
    config = tmp_path / "farm.yaml"
    assert problems(config, farm_yaml("""\
        kind: docker
        count: 1
        docker_hosts: [unix:///var/run/docker.sock, unix:///run/b.sock]
        """)) == [f"{config}:7: workers.dk.docker_hosts: 2 engines need a count of at least "
                  "2 (one worker per engine at least), not 1"]
    assert problems(config, farm_yaml("{kind: docker, docker_hosts: []}")) == [
        f"{config}:4: workers.dk.docker_hosts: must be a list of one or more engines (each a "
        "URL, or {url: tcp://..., tls: DIR})"]


def test_docker_tls_goes_with_a_tcp_docker_host(tmp_path):
    config = tmp_path / "farm.yaml"
    tls = tls_dir(tmp_path / "tls")
    assert problems(config, farm_yaml(f"{{kind: docker, docker_tls: {tls}}}")) == [
        f"{config}:4: workers.dk.docker_tls: goes with a tcp:// docker_host (under "
        "docker_hosts each engine takes its own tls)"]


def test_image_registry_is_host_and_port(tmp_path):
    config = tmp_path / "farm.yaml"
    assert problems(config, farm_yaml("{kind: docker, image_registry: 'http://reg:5000'}")) == [
        f"{config}:4: workers.dk.image_registry: must be HOST:PORT of a container registry, "
        "not 'http://reg:5000'"]
    farm = loads(farm_yaml("{kind: docker, image_registry: '127.0.0.1:5000'}"), config)
    assert farm.pools["dk"].image_registry == "127.0.0.1:5000"


def test_cpus_on_loopback_engines_are_this_machines(tmp_path):
    cpus = os.cpu_count() or 1
    config = tmp_path / "farm.yaml"
    [problem] = problems(config, farm_yaml(f"""\
        kind: docker
        cpus: {cpus + 1}
        docker_hosts: [unix:///var/run/docker.sock, "tcp://127.0.0.1:2375"]
        """))
    assert "workers.dk.cpus: must be at most" in problem


def test_warm_engine_wait_is_whole_seconds_up_to_an_hour(tmp_path):
    config = tmp_path / "farm.yaml"
    assert loads(farm_yaml("{kind: docker}"), config).pools["dk"].warm_engine_wait == 30
    assert loads(farm_yaml("{kind: docker, warm_engine_wait: 0}"),
                 config).pools["dk"].warm_engine_wait == 0
    assert problems(config, farm_yaml("{kind: docker, warm_engine_wait: -1}")) == [
        f"{config}:4: workers.dk.warm_engine_wait: must be at least 0, not -1"]
    [problem] = problems(config, farm_yaml("{kind: docker, warm_engine_wait: soon}"))
    assert problem.startswith(f"{config}:4: workers.dk.warm_engine_wait: must be a whole number")


def test_standby_is_whole_seconds_up_to_a_day_and_only_for_docker_pools(tmp_path):
    config = tmp_path / "farm.yaml"
    assert loads(farm_yaml("{kind: docker}"), config).pools["dk"].standby == 300
    assert loads(farm_yaml("{kind: docker, standby: 0}"), config).pools["dk"].standby == 0
    assert problems(config, farm_yaml("{kind: docker, standby: -5}")) == [
        f"{config}:4: workers.dk.standby: must be at least 0, not -5"]
    assert problems(config, farm_yaml("{kind: docker, standby: 86401}")) == [
        f"{config}:4: workers.dk.standby: must be at most 86400, not 86401"]
    [problem] = problems(config, farm_yaml("{kind: docker, standby: 5m}"))
    assert problem.startswith(f"{config}:4: workers.dk.standby: must be a whole number")
    [problem] = problems(config, farm_yaml("{kind: local, standby: 30}"))
    assert "standby" in problem and problem.startswith(f"{config}:4:")
