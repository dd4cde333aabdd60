"""Falling back to local workers when no Docker engine answers."""

from __future__ import annotations

from pathlib import Path

from rustfarm.farmfile import loads
from rustfarm.master.configuration import buildmaster_config
from rustfarm.runtime import Runtime, host_triple, without_docker

FARM = """\
farm: {{name: demo}}
workers:
  containers: {{kind: docker, count: 3, cpus: 1.5, memory: 2g}}
targets:
  {host}: {{pool: containers, image: "rustfarm/{host}:abc"}}
  mipsel-unknown-linux-gnu: {{pool: containers, image: "rustfarm/mipsel-unknown-linux-gnu:abc"}}
projects:
  hello: {{source: {src}}}
"""


def farm(tmp_path: Path):
    return loads(FARM.format(host=host_triple(), src=tmp_path), tmp_path / "farm.yaml")


def test_without_docker_the_host_target_moves_to_local_workers(tmp_path):
    adjusted = without_docker(farm(tmp_path))
    assert adjusted.moved == (host_triple(),)
    assert adjusted.disabled == ("mipsel-unknown-linux-gnu",)
    assert adjusted.farm.targets[host_triple()].pool == "local"
    assert adjusted.farm.pools["local"].kind == "local"
    assert adjusted.farm.projects["hello"].targets == (host_triple(),)


def test_master_config_follows_the_runtime(tmp_path):
    with_docker = buildmaster_config(farm(tmp_path), Runtime())
    workers = with_docker["workers"]
    assert [w.name for w in workers] == ["containers-1", "containers-2", "containers-3"]
    assert type(workers[0]).__name__ == "FarmDockerLatentWorker"
    # Containers have no network: the worker port listens on loopback, and a
    # Unix socket forwards to it for them.
    assert with_docker["protocols"]["pb"]["port"].endswith("interface=127.0.0.1")
    [socket] = [s for s in with_docker["services"] if s.name == "worker-socket"]
    # The project's two targets, and uploads' builders for both (all in containers).
    assert len(with_docker["builders"]) == 4
    assert all(bool(b.locks) != b.name.startswith("compile:") for b in with_docker["builders"])

    no_docker = buildmaster_config(farm(tmp_path), Runtime(docker=False, docker_off_reason="x"))
    assert [w.name for w in no_docker["workers"]] == ["local-1"]
    assert [b.name for b in no_docker["builders"]] == [f"hello:{host_triple()}"]
    assert no_docker["protocols"]["pb"]["port"].endswith("interface=127.0.0.1")
    assert not [s for s in no_docker["services"] if s.name == "worker-socket"]


def test_runtime_round_trips_through_its_file(tmp_path):
    runtime = Runtime(docker=False, docker_off_reason="no engine at unix:///x")
    path = tmp_path / "runtime.env"
    runtime.write(path)
    assert Runtime.read(path) == runtime
    assert Runtime.read(tmp_path / "none") == Runtime()      # never started: as declared
    path.write_text("{not json")
    assert Runtime.read(path) == Runtime()


def test_a_socket_left_behind_by_a_stopped_engine_counts_as_no_engine(tmp_path):
    import socket

    from rustfarm.cli.docker_probe import socket_missing

    path = tmp_path / "docker.sock"
    assert socket_missing(f"unix://{path}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(path))
        listening.listen(1)
        assert not socket_missing(f"unix://{path}")
    assert path.exists()            # closed without unlinking, as a killed dockerd leaves it
    assert socket_missing(f"unix://{path}")
    assert not socket_missing("tcp://127.0.0.1:2375")
