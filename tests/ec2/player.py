"""Plays the EC2 instances a master launches in moto: each one boots the real AMI
boot script (tests/ami/harness.py) with the user-data moto recorded, and is torn
down when moto says it was terminated. Powering off terminates it in moto, as
InstanceInitiatedShutdownBehavior=terminate does on EC2."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

from tests.ami.harness import FakeInstance, boot_instance

TAG_FARM = "rustfarm:farm"


class InstancePlayer:
    def __init__(self, moto, farm: str, workdir: Path, boot_env: dict[str, str] | None = None,
                 region: str = "us-east-1"):
        self.moto = moto
        self.region = region
        self.errors: list[str] = []
        self.farm = farm
        self.workdir = workdir
        self.boot_env = boot_env or {}
        self.booted: dict[str, FakeInstance] = {}
        self.user_data: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="instance-player")

    def __enter__(self) -> "InstancePlayer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert not self.errors, f"the instance player failed: {self.errors}"
        self._thread.join(timeout=30)
        for instance in self.booted.values():
            instance.stop()

    def _instances(self) -> list[dict]:
        reply = self.moto.client(self.region).describe_instances(
            Filters=[{"Name": f"tag:{TAG_FARM}", "Values": [self.farm]}])
        return [i for r in reply["Reservations"] for i in r["Instances"]]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step(self.moto.client(self.region))
            except Exception as err:    # reported by the test, not lost in a thread
                self.errors.append(repr(err))
            time.sleep(0.3)

    def _step(self, client) -> None:
        for instance in self._instances():
            instance_id, state = instance["InstanceId"], instance["State"]["Name"]
            played = self.booted.get(instance_id)
            if played is None and state in ("pending", "running"):
                data = client.describe_instance_attribute(
                    InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
                self.user_data[instance_id] = base64.b64decode(data).decode()
                self.booted[instance_id] = boot_instance(
                    self.user_data[instance_id],
                    {"RUSTFARM_CONTAINER_NAME": f"rustfarm-ec2test-{instance_id}",
                     "RUSTFARM_DOCKER_WAIT": "30", **self.boot_env},
                    workdir=self.workdir / instance_id)
            elif played is not None:
                if state in ("shutting-down", "terminated"):
                    played.stop()
                elif played.powered_off:
                    client.terminate_instances(InstanceIds=[instance_id])

    def state(self, instance_id: str) -> str:
        reply = self.moto.client(self.region).describe_instances(InstanceIds=[instance_id])
        return reply["Reservations"][0]["Instances"][0]["State"]["Name"]
