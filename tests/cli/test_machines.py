"""Which masters `farm up` runs on a machine of a farm of several, and where its local
workers go when those are lost."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rustfarm.cli.lifecycle import Farmhouse
from rustfarm.errors import FarmError
from rustfarm.farmfile import loads

HERE = socket.gethostname()


def farm_of(tmp_path: Path, worker_host: str, first_host: str) -> Farmhouse:
    text = f"""\
farm: {{name: machines, worker_port: 9700, worker_host: "{worker_host}"}}
www: {{port: 8700}}
db: {{url: 'postgresql://farm@10.0.0.2/farm'}}
masters:
  - {{name: a, host: "{first_host}", www_port: 8700, worker_port: 9700}}
  - {{name: b, host: build2.internal, www_port: 8700, worker_port: 9700}}
  - {{name: c, host: build3.internal, www_port: 8701, worker_port: 9701}}
router: {{url: 'ws://10.0.0.2:8081/ws', realm: buildbot}}
workers:
  local: {{kind: local, count: 1}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local}}
projects:
  hello: {{source: {tmp_path}}}
"""
    (tmp_path / "farm.yaml").write_text(text)
    return Farmhouse(loads(text, tmp_path / "farm.yaml"))


def test_local_workers_fail_over_to_other_machines_masters_when_those_listen_for_them(
        tmp_path):
    house = farm_of(tmp_path, "0.0.0.0", HERE)
    assert [m.name for m, _ in house.master_homes()] == ["a"]
    assert house.masters_elsewhere("0.0.0.0") == (("build2.internal", 9700),
                                                  ("build3.internal", 9701))


def test_masters_listening_on_loopback_take_no_worker_of_another_machine(tmp_path):
    house = farm_of(tmp_path, "", HERE)
    assert house.masters_elsewhere("127.0.0.1") == ()


def test_farm_up_on_a_machine_with_no_master_of_the_farm_says_so(tmp_path):
    house = farm_of(tmp_path, "0.0.0.0", "build1.internal")
    with pytest.raises(FarmError, match=rf"no master of farm.yaml runs on this machine "
                                        rf"\({HERE}\): its masters' hosts are build1.internal, "
                                        "build2.internal, build3.internal"):
        house.up()
    assert not (tmp_path / ".farm").exists()
