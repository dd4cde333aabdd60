"""The EC2 worker pool driven by a real Buildbot master, against moto's EC2 server.

Each master here is a real ``buildbot start --nodaemon`` process (sqlite, PB
and REST on loopback) whose configuration declares FarmEC2LatentWorkers; builds
are forced over REST. Its EC2 is moto's server in this test process, reached
through ``AWS_ENDPOINT_URL_EC2``. What an instance would do at boot (read its
user-data, start buildbot-worker with it) the tests do themselves, when a
scenario needs a worker to connect: :meth:`FarmMaster.boot` reads the instance's
user-data back from EC2 and starts a real buildbot-worker process with exactly
those values. Nothing of Buildbot's is replaced.

Spot shortages are the one thing moto cannot produce: for those, the server
answers chosen RunInstances calls with EC2's own error response
(``MotoEc2.refuse_spot``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from buildbot.process.results import CANCELLED, EXCEPTION, RETRY, SUCCESS

from rustfarm.userdata import parse_user_data
from tests.support.moto_server import REGION, MotoEc2, free_port, launch_params_name_worker
from tests.support.farm import wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
FARM = "testfarm"
REAPER_FARM = "reapfarm"   # the reaper tests' own farm: nothing else of this module is theirs
PASSWORD = "pw-7f3c9e1d-never-logged"
IMAGE = "registry.example.com/rustfarm/worker:2026-11-21"
LIVE = ("pending", "running", "stopping", "stopped")

MASTER_CFG = '''\
import json
import os

from buildbot.plugins import schedulers, secrets, steps, util
from buildbot.process.factory import BuildFactory
from buildbot.secrets.providers.base import SecretProviderBase
from twisted.internet import defer, reactor, task
from rustfarm.master.builds import FarmBuild
from rustfarm.workers.ec2.launch import Ec2Launch
from rustfarm.workers.ec2.reaper import FarmEC2Reaper
from rustfarm.workers.ec2.worker import FarmEC2LatentWorker

spec = json.load(open(os.path.join(basedir, "spec.json")))


class SecretsReadWhenAsked(SecretProviderBase):
    """Reads a secret at each use, as Vault or pass do: a rotation needs no reconfig."""

    name = "SecretsReadWhenAsked"

    def reconfigService(self, dirname):
        self.dirname = dirname

    def get(self, entry):
        path = os.path.join(self.dirname, entry)
        return open(path).read().strip() if os.path.exists(path) else None


FarmEC2LatentWorker.poll_interval = 0.2


class SlowStartingBuild(FarmBuild):
    """The farm's build, as a loaded master starts it: seconds after its request was
    claimed (a builder's "start_delay")."""

    start_delay = 0

    @defer.inlineCallbacks
    def startBuild(self, workerforbuilder):
        yield task.deferLater(reactor, self.start_delay, lambda: None)
        yield super().startBuild(workerforbuilder)


class StoppedEarlyBuild(FarmBuild):
    """The farm's build, stopped as it prepares: after it exists, before it asks for a
    worker (as a stop from the web UI can come)."""

    def setupBuild(self):
        super().setupBuild()
        self.stopBuild("stopped while it prepared")


# Buildbot's own latent-worker options; everything else says what to launch.
LATENT_WORKER_OPTIONS = ("build_wait_timeout", "check_instance_interval", "missing_timeout")
c = BuildmasterConfig = {}
c["workers"], c["builders"] = [], []
for builder, setup in spec["builders"].items():
    for name in setup["workers"]:
        kwargs = dict(spec["common"], pool=builder, **setup["kwargs"])
        if spec["secret_credentials"]:
            kwargs.update(aws_access_key_id=util.Secret("aws-access-key-id"),
                          aws_secret_access_key=util.Secret("aws-secret-access-key"))
        password = util.Secret(setup.get("password_secret") or "worker-password")
        options = {k: kwargs.pop(k) for k in LATENT_WORKER_OPTIONS if k in kwargs}
        c["workers"].append(FarmEC2LatentWorker(name, password, Ec2Launch(**kwargs), **options))
    command = setup.get("command") or ["echo", "built on", util.Property("instance")]
    factory = BuildFactory([steps.ShellCommand(command=command)])
    factory.buildClass = StoppedEarlyBuild if setup.get("stops_early") else type(
        "Build", (SlowStartingBuild,), {"start_delay": setup.get("start_delay") or 0})
    c["builders"].append(util.BuilderConfig(
        name=builder, workernames=setup["workers"], factory=factory))
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=list(spec["builders"]))]
c["services"] = []
if spec["reaper_interval"]:
    c["services"].append(FarmEC2Reaper(farm=spec["farm"], interval=spec["reaper_interval"]))
c["secretsProviders"] = [secrets.SecretInAFile(dirname=spec["secrets_dir"]),
                        SecretsReadWhenAsked(dirname=spec["rotating_dir"])]
c["protocols"] = {"pb": {"port": "tcp:%d:interface=127.0.0.1" % spec["pb_port"]}}
c["www"] = {"port": "tcp:%d:interface=127.0.0.1" % spec["www_port"], "plugins": {}}
c["db"] = {"db_url": "sqlite:///state.sqlite"}
c["buildbotNetUsageData"] = None
'''


def wait_for(what: str, check, timeout: float = 30, interval: float = 0.2):
    return wait_until(check, timeout, f"no {what}", interval)


class FarmMaster:
    """A buildbot master process whose workers are FarmEC2LatentWorkers."""

    def __init__(self, basedir: Path, template: Path, moto: MotoEc2, builders: dict,
                 common: dict, reaper_interval: float | None = None,
                 secret_credentials: bool = True, farm: str = FARM):
        self.basedir, self.moto = basedir, moto
        self.ec2 = moto.client()
        shutil.copytree(template, basedir)
        secrets_dir = basedir / "secrets"
        secrets_dir.mkdir(mode=0o700)
        for name, value in {"worker-password": PASSWORD, "aws-access-key-id": "testing",
                            "aws-secret-access-key": "testing"}.items():
            (secrets_dir / name).write_text(value + "\n")
            (secrets_dir / name).chmod(0o600)
        self.rotating_dir = basedir / "rotating-secrets"
        self.rotating_dir.mkdir(mode=0o700)
        (self.rotating_dir / "rotating-password").write_text("first-password\n")
        self.pb_port, self.www_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.www_port}/api/v2"
        self.farm = farm
        (basedir / "spec.json").write_text(json.dumps({
            "farm": farm, "builders": builders,
            "common": {"farm": farm, "region": REGION, "master_host": "127.0.0.1",
                       "master_port": self.pb_port, "image": IMAGE, **common},
            "reaper_interval": reaper_interval, "secret_credentials": secret_credentials,
            "secrets_dir": str(secrets_dir), "rotating_dir": str(self.rotating_dir),
            "pb_port": self.pb_port,
            "www_port": self.www_port}))
        (basedir / "master.cfg").write_text(MASTER_CFG)
        # Secret credentials: the environment then has none, proving the secrets are used.
        self.env = moto.environment(credentials=not secret_credentials)
        self.process: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    @property
    def log(self) -> str:
        path = self.basedir / "twistd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> "FarmMaster":
        self.process = subprocess.Popen(
            [str(BIN / "buildbot"), "start", "--nodaemon", str(self.basedir)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("the master to start", lambda: self._answers() or self._died(), 60)
        assert self.process.poll() is None, f"master died:\n{self.log[-3000:]}"
        return self

    def _died(self):
        return self.process.poll() is not None

    def _answers(self):
        try:
            return bool(self.get("/builders"))
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

    # -- REST ------------------------------------------------------------------

    def get(self, path: str):
        request = urllib.request.Request(self.api + path, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)

    def control(self, path: str, method: str, **params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params}).encode()
        request = urllib.request.Request(self.api + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)["result"]

    def force(self, builder: str) -> int:
        builderid = self.get(f"/builders?name={builder}")["builders"][0]["builderid"]
        _, requests = self.control("/forceschedulers/force", "force",
                                   builderid=str(builderid), reason="test", username="")
        return int(next(iter(requests.values())))

    def builds(self, brid: int) -> list[dict]:
        return self.get(f"/builds?buildrequestid={brid}&order=buildid")["builds"]

    def request(self, brid: int) -> dict:
        return self.get(f"/buildrequests/{brid}")["buildrequests"][0]

    def finished_builds(self, brid: int) -> list[dict]:
        return [b for b in self.builds(brid) if b["complete"]]

    def preparation_log(self, build: dict) -> str:
        steps = self.get(f"/builds/{build['buildid']}/steps")["steps"]
        text = []
        for step in steps:
            for log in self.get(f"/steps/{step['stepid']}/logs")["logs"]:
                contents = self.get(f"/logs/{log['logid']}/contents")["logchunks"]
                text += [chunk["content"] for chunk in contents]
        return "\n".join(text)

    def cancel(self, brid: int) -> None:
        """Cancel a request and stop its builds: ends a retry loop.

        A build stopped in its first moments may still go on to substantiate its
        worker (Buildbot checks for the stop only later), so stop until it ends.
        """
        def ended():
            if not self.request(brid)["complete"]:
                self.control(f"/buildrequests/{brid}", "cancel", reason="test over")
            running = [b for b in self.builds(brid) if not b["complete"]]
            for build in running:
                try:
                    self.control(f"/builds/{build['buildid']}", "stop", reason="test over")
                except urllib.error.HTTPError:
                    pass
            return self.request(brid)["complete"] and not running

        wait_for(f"request {brid} to end", ended, 30, interval=1)

    # -- EC2 -------------------------------------------------------------------

    def instances(self, worker: str, states=LIVE + ("shutting-down", "terminated")) -> list:
        reply = self.ec2.describe_instances(Filters=[
            {"Name": "tag:rustfarm:worker", "Values": [worker]},
            {"Name": "instance-state-name", "Values": list(states)}])
        found = [i for r in reply["Reservations"] for i in r["Instances"]]
        return sorted(found, key=lambda i: i["LaunchTime"])

    def state(self, instance_id: str) -> str:
        reply = self.ec2.describe_instances(InstanceIds=[instance_id])
        return reply["Reservations"][0]["Instances"][0]["State"]["Name"]

    def user_data(self, instance_id: str):
        value = self.ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
        return parse_user_data(base64.b64decode(value))

    def boot(self, instance_id: str) -> subprocess.Popen:
        """Do what the AMI's boot script does: start the worker its user-data names."""
        settings = self.user_data(instance_id)
        workdir = self.basedir / f"instance-{instance_id}"
        subprocess.run([str(BIN / "buildbot-worker"), "create-worker", "-q", str(workdir),
                        f"{settings.master}:{settings.port}", settings.name, settings.password],
                       check=True, env=self.env)
        worker = subprocess.Popen([str(BIN / "buildbot-worker"), "start", "--nodaemon",
                                   str(workdir)], env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(worker)
        return worker

    def power_off(self, worker: subprocess.Popen) -> None:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture(scope="module")
def moto():
    server = MotoEc2().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def master_template(tmp_path_factory):
    template = tmp_path_factory.mktemp("template") / "master"
    subprocess.run([str(BIN / "buildbot"), "create-master", "-q", "-r", str(template)], check=True)
    return template


@pytest.fixture(scope="module")
def amis(moto):
    """An old and a new 'rustfarm-worker-*' image, as a build of the AMI would leave them."""
    ec2 = moto.client()
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    builder = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]
    old = ec2.create_image(InstanceId=builder["InstanceId"], Name="rustfarm-worker-1")["ImageId"]
    time.sleep(1.1)  # creation dates have a resolution of one second
    new = ec2.create_image(InstanceId=builder["InstanceId"], Name="rustfarm-worker-2")["ImageId"]
    ec2.terminate_instances(InstanceIds=[builder["InstanceId"]])
    return {"old": old, "new": new}


POOL_BUILDERS = {
    "launch": {"workers": ["ec2-launch-1"], "kwargs": {
        "ami_name": "rustfarm-worker-*", "ami_owner": "self", "instance_type": "c7a.large",
        "volume_size_gb": 40, "keypair_name": "ops", "tags": {"team": "compilers"},
        "connect_timeout": 60, "max_lifetime": 21600, "container_memory": "6g"}},
    "spot": {"workers": ["ec2-spot-1"], "kwargs": {
        "spot": True, "max_spot_price": 0.05, "connect_timeout": 60}},
    "spotfb": {"workers": ["ec2-spotfb-1"], "kwargs": {"spot": True, "connect_timeout": 60}},
    "spotfail": {"workers": ["ec2-spotfail-1"], "kwargs": {
        "spot": True, "spot_fallback": "fail", "connect_timeout": 60}},
    "silent": {"workers": ["ec2-silent-1", "ec2-silent-2"], "kwargs": {"connect_timeout": 4}},
    "dies": {"workers": ["ec2-dies-1"], "kwargs": {"connect_timeout": 120}},
    "rotate": {"workers": ["ec2-rotate-1"], "password_secret": "rotating-password",
               "kwargs": {"connect_timeout": 60}},
    "reuse": {"workers": ["ec2-reuse-1"], "kwargs": {
        "build_wait_timeout": 4, "connect_timeout": 60}},
    "vanish": {"workers": ["ec2-vanish-1"], "command": ["sleep", "120"],
               "kwargs": {"connect_timeout": 60, "running_check_interval": 1}},
    "slowstart": {"workers": ["ec2-slowstart-1"], "start_delay": 3,
                  "kwargs": {"connect_timeout": 60}},
    "stopsearly": {"workers": ["ec2-stopsearly-1"], "stops_early": True,
                   "kwargs": {"connect_timeout": 60}},
}


@pytest.fixture(scope="module")
def pool_master(moto, amis, master_template, tmp_path_factory):
    common = {"ami": amis["new"], "instance_type": "t3.micro", "check_instance_interval": 1}
    builders = {name: {"workers": b["workers"], "command": b.get("command"),
                       "password_secret": b.get("password_secret"),
                       "start_delay": b.get("start_delay"),
                       "stops_early": b.get("stops_early"),
                       "kwargs": {k: v for k, v in {**common, **b["kwargs"]}.items()
                                  if not ("ami_name" in b["kwargs"] and k == "ami")}}
                for name, b in POOL_BUILDERS.items()}
    master = FarmMaster(tmp_path_factory.mktemp("pool") / "master", master_template, moto,
                        builders, common={})
    master.start()
    yield master
    master.stop()


def only_instance(master: FarmMaster, worker: str, state="running") -> dict:
    found = wait_for(f"an instance for {worker}",
                     lambda: [i for i in master.instances(worker) if i["State"]["Name"] == state])
    assert len(found) == 1, found
    return found[0]


def test_a_build_launches_a_tagged_imdsv2_instance_and_terminates_it(pool_master, amis, moto):
    master = pool_master
    brid = master.force("launch")
    instance = only_instance(master, "ec2-launch-1")
    iid = instance["InstanceId"]

    # Tags and metadata options are part of the launch request itself: no instance
    # or volume ever exists untagged, nor with IMDSv1.
    launches = [c for c in moto.calls("RunInstances")
                if launch_params_name_worker(c, "ec2-launch-1")]
    assert len(launches) == 1
    sent = launches[0]
    assert sent["MetadataOptions.HttpTokens"] == "required"
    assert {sent[k] for k in sent if k.startswith("TagSpecification.") and
            k.endswith(".ResourceType")} == {"instance", "volume"}
    assert not [c for c in moto.calls("CreateTags") if c.get("ResourceId.1") == iid]

    assert instance["ImageId"] == amis["new"]          # newest match of ami_name
    assert instance["InstanceType"] == "c7a.large"
    assert instance.get("InstanceLifecycle") != "spot"
    assert instance["KeyName"] == "ops"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    [master_name] = [m["name"] for m in master.get("/masters")["masters"]]
    assert tags == {"rustfarm:farm": FARM, "rustfarm:pool": "launch",
                    "rustfarm:worker": "ec2-launch-1", "rustfarm:master": master_name,
                    "team": "compilers", "Name": f"{FARM}/ec2-launch-1"}
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    shutdown = master.ec2.describe_instance_attribute(
        InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    volumes = master.ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]
    assert [v["Size"] for v in volumes] == [40]
    assert {t["Key"]: t["Value"] for t in volumes[0]["Tags"]} == tags

    settings = master.user_data(iid)
    assert (settings.image, settings.master, settings.port, settings.name, settings.password) \
        == (IMAGE, "127.0.0.1", master.pb_port, "ec2-launch-1", PASSWORD)
    assert (settings.max_lifetime, settings.memory) == (21600, "6g")

    worker = master.boot(iid)
    build = wait_for("the build to finish", lambda: master.finished_builds(brid), 60)[0]
    assert build["results"] == SUCCESS, master.preparation_log(build)
    # build_wait_timeout 0: one build per instance, terminated once the build is done
    # (EC2 passes through shutting-down; moto goes straight to terminated).
    wait_for("the instance to be terminated", lambda: master.state(iid) == "terminated")
    master.power_off(worker)

    properties = master.get(f"/builds/{build['buildid']}/properties")["properties"][0]
    assert properties["instance"][0] == iid
    assert PASSWORD not in json.dumps(properties)
    assert PASSWORD not in json.dumps(master.get("/workers"))
    assert PASSWORD not in master.log
    assert f"launched on-demand instance {iid}" in master.log


def test_with_an_idle_time_the_instance_serves_several_builds(pool_master):
    master = pool_master
    first = master.force("reuse")
    instance = only_instance(master, "ec2-reuse-1")
    worker = master.boot(instance["InstanceId"])
    build = wait_for("the first build", lambda: master.finished_builds(first), 60)[0]
    assert build["results"] == SUCCESS
    second = master.force("reuse")                       # within build_wait_timeout (4 s)
    build = wait_for("the second build", lambda: master.finished_builds(second), 60)[0]
    assert build["results"] == SUCCESS
    properties = master.get(f"/builds/{build['buildid']}/properties")["properties"][0]
    assert properties["workername"][0] == "ec2-reuse-1"
    assert len(master.instances("ec2-reuse-1")) == 1     # no second instance
    assert master.state(instance["InstanceId"]) == "running"
    wait_for("the idle instance to be terminated",
             lambda: master.state(instance["InstanceId"]) == "terminated", 20)
    master.power_off(worker)


def test_a_rotated_password_secret_is_used_by_the_next_instance(pool_master):
    master = pool_master
    secret = master.rotating_dir / "rotating-password"
    for password in ("first-password", "rotated-password"):
        secret.write_text(password + "\n")  # the first one is what the master started with
        brid = master.force("rotate")
        instance = only_instance(master, "ec2-rotate-1")
        assert master.user_data(instance["InstanceId"]).password == password
        worker = master.boot(instance["InstanceId"])   # authenticates with that password
        build = wait_for("the build", lambda: master.finished_builds(brid), 60)[0]
        assert build["results"] == SUCCESS
        wait_for("the instance to be terminated",
                 lambda: master.state(instance["InstanceId"]) == "terminated")
        master.power_off(worker)
    assert "rotated-password" not in master.log and "first-password" not in master.log


def test_spot_instances_are_requested_with_instance_market_options(pool_master):
    master = pool_master
    brid = master.force("spot")
    instance = only_instance(master, "ec2-spot-1")
    assert instance["InstanceLifecycle"] == "spot"
    worker = master.boot(instance["InstanceId"])
    build = wait_for("the build to finish", lambda: master.finished_builds(brid), 60)[0]
    assert build["results"] == SUCCESS
    wait_for("the instance to be terminated",
             lambda: master.state(instance["InstanceId"]) in ("shutting-down", "terminated"))
    master.power_off(worker)


def test_no_spot_capacity_falls_back_to_on_demand(pool_master, moto):
    master = pool_master
    refusal = moto.refuse_spot("ec2-spotfb-1")
    brid = master.force("spotfb")
    instance = only_instance(master, "ec2-spotfb-1")
    assert refusal.hits >= 1
    assert instance.get("InstanceLifecycle") != "spot"
    assert len(master.instances("ec2-spotfb-1")) == 1      # nothing else was left behind
    assert "no Spot capacity for t3.micro (InsufficientInstanceCapacity" in master.log
    worker = master.boot(instance["InstanceId"])
    build = wait_for("the build to finish", lambda: master.finished_builds(brid), 60)[0]
    assert build["results"] == SUCCESS
    master.power_off(worker)


def test_no_spot_capacity_fails_the_build_when_fallback_is_fail(pool_master, moto):
    master = pool_master
    refusal = moto.refuse_spot("ec2-spotfail-1", code="SpotMaxPriceTooLow", status=400,
                               message="Your Spot request price is lower than the minimum")
    brid = master.force("spotfail")
    build = wait_for("the build to finish", lambda: master.finished_builds(brid), 30)[0]
    assert refusal.hits == 1
    assert build["results"] == EXCEPTION
    assert master.request(brid)["complete"]              # not retried
    why = master.preparation_log(build)
    assert "no Spot capacity" in why and "spot_fallback is 'fail'" in why
    assert "SpotMaxPriceTooLow" in why
    assert master.instances("ec2-spotfail-1") == []


def test_an_instance_whose_worker_never_connects_is_terminated_and_the_build_retried(
        pool_master):
    master = pool_master
    brid = master.force("silent")
    first = wait_for("a first instance", lambda: [
        i for w in ("ec2-silent-1", "ec2-silent-2") for i in master.instances(w)])[0]
    retried = wait_for("the build to be retried", lambda: master.finished_builds(brid), 30)[0]
    assert retried["results"] == RETRY
    assert master.state(first["InstanceId"]) in ("shutting-down", "terminated")
    assert "did not connect within 4s" in master.preparation_log(retried)

    # The request went back to the queue, and another instance is launched for it.
    second = wait_for("a second instance", lambda: [
        i for w in ("ec2-silent-1", "ec2-silent-2") for i in master.instances(w)
        if i["InstanceId"] != first["InstanceId"]], 30)[0]
    assert len(master.builds(brid)) >= 2
    master.cancel(brid)
    wait_for("no instance left", lambda: not [
        i for w in ("ec2-silent-1", "ec2-silent-2") for i in master.instances(w, LIVE)])
    assert master.state(second["InstanceId"]) in ("shutting-down", "terminated")


def test_an_instance_that_ends_by_itself_is_noticed_within_seconds(pool_master):
    master = pool_master
    brid = master.force("dies")
    instance = only_instance(master, "ec2-dies-1")
    # As if the boot script had given up and powered off (shutdown behaviour: terminate).
    master.ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    # Noticed by the instance checks, not at connect_timeout (120 s): the log says why.
    retried = wait_for("the build to be retried", lambda: master.finished_builds(brid), 20)[0]
    assert retried["results"] == RETRY
    assert f"instance {instance['InstanceId']} is terminated" in master.preparation_log(retried)
    master.cancel(brid)
    assert master.instances("ec2-dies-1", LIVE) == []


def test_a_connected_instance_that_vanishes_mid_build_gets_the_build_retried(pool_master):
    master = pool_master
    brid = master.force("vanish")
    instance = only_instance(master, "ec2-vanish-1")
    worker = master.boot(instance["InstanceId"])
    wait_for("the build's step to run", lambda: any(
        step["started_at"] and not step["complete"]
        for build in master.builds(brid)
        for step in master.get(f"/builds/{build['buildid']}/steps")["steps"]
        if step["name"] != "worker_preparation"), 30)
    # A hard stop: the worker process freezes (no TCP reset) and the instance ends.
    worker.send_signal(signal.SIGSTOP)
    try:
        master.ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        # Ended by the running instance's check, not by TCP giving up minutes later.
        build = wait_for("the build to end", lambda: master.finished_builds(brid), 20)[0]
        assert build["results"] == RETRY
        assert (f"instance {instance['InstanceId']} is terminated (Client.UserInitiatedShutdown"
                in master.log)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    # The retried build may be starting on the worker while it still insubstantiates
    # after the vanished instance: cancelling it then ends it too.
    master.cancel(brid)
    assert master.instances("ec2-vanish-1", LIVE) == []


def test_a_request_cancelled_while_its_build_starts_ends_that_build(pool_master):
    """Buildbot stops a build whose request is cancelled between its claim and the
    build's start, and returns without finishing it: the build never ended, its worker
    stayed busy and the master could not stop. The farm's build ends, CANCELLED, and
    launches nothing."""
    master = pool_master
    brid = master.force("slowstart")       # its build starts 3 s after the claim
    wait_for("the request to be claimed", lambda: master.request(brid)["claimed"], 10)
    master.control(f"/buildrequests/{brid}", "cancel", reason="not wanted after all")
    [build] = wait_for("the build to end", lambda: master.finished_builds(brid), 30)
    assert build["results"] == CANCELLED
    assert "not wanted after all" in build["state_string"]
    assert master.request(brid)["complete"]
    assert master.instances("ec2-slowstart-1") == []
    # The worker is free: the next build launches its instance.
    again = master.force("slowstart")
    only_instance(master, "ec2-slowstart-1")
    master.cancel(again)
    assert master.instances("ec2-slowstart-1", LIVE) == []


def test_a_build_stopped_before_it_asks_for_its_worker_launches_nothing(pool_master):
    """Buildbot sees such a stop only once the worker is up: an instance would boot for
    a build already ended. The farm's worker declines it, and the build ends
    CANCELLED."""
    master = pool_master
    brid = master.force("stopsearly")
    [build] = wait_for("the build to end", lambda: master.finished_builds(brid), 30)
    assert build["results"] == CANCELLED
    assert "nothing started for stopsearly's build" in master.log
    assert master.instances("ec2-stopsearly-1") == []


def test_stopping_the_master_terminates_what_it_launched(moto, amis, master_template,
                                                         tmp_path):
    master = FarmMaster(tmp_path / "master", master_template, moto, {
        "hold": {"workers": ["ec2-stop-1"], "kwargs": {
            "ami": amis["new"], "instance_type": "t3.micro", "connect_timeout": 120}}},
        common={}, secret_credentials=False)
    master.start()
    try:
        master.force("hold")
        instance = only_instance(master, "ec2-stop-1")
    finally:
        master.stop()
    assert master.state(instance["InstanceId"]) in ("shutting-down", "terminated")


def launch_tagged(moto: MotoEc2, ami: str, tags: dict) -> str:
    """An instance made outside the master, as a crashed earlier master would leave it."""
    spec = [{"ResourceType": "instance",
             "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return moto.client().run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                       TagSpecifications=spec)["Instances"][0]["InstanceId"]


def reaper_master(moto, amis, template, basedir, interval) -> FarmMaster:
    return FarmMaster(basedir, template, moto, {
        "hold": {"workers": ["ec2-hold-1"], "kwargs": {
            "ami": amis["new"], "instance_type": "t3.micro", "connect_timeout": 120}}},
        common={}, reaper_interval=interval, secret_credentials=False, farm=REAPER_FARM)


def test_reaper_terminates_this_farms_orphans_at_master_start(moto, amis, master_template,
                                                              tmp_path):
    orphan = launch_tagged(moto, amis["new"], {
        "rustfarm:farm": REAPER_FARM, "rustfarm:worker": "ec2-gone-7", "rustfarm:pool": "gone"})
    stopped_orphan = launch_tagged(moto, amis["new"], {
        "rustfarm:farm": REAPER_FARM, "rustfarm:worker": "ec2-gone-8"})
    moto.client().stop_instances(InstanceIds=[stopped_orphan])
    other_farm = launch_tagged(moto, amis["new"], {
        "rustfarm:farm": "otherfarm", "rustfarm:worker": "ec2-hold-1"})
    untagged = launch_tagged(moto, amis["new"], {})

    # A pass every 10 minutes: only the pass at start can reap within this test.
    master = reaper_master(moto, amis, master_template, tmp_path / "master", interval=600)
    master.start()
    try:
        wait_for("the orphans to be terminated", lambda: all(
            master.state(i) in ("shutting-down", "terminated")
            for i in (orphan, stopped_orphan)), 20)
        assert (f"terminating orphan instance {orphan} in {REGION} "
                "(worker ec2-gone-7, pool gone, running, age ") in master.log
        assert (f"terminating orphan instance {stopped_orphan} in {REGION} "
                "(worker ec2-gone-8, pool ?, stopped, age ") in master.log
        assert master.state(other_farm) == "running"
        assert master.state(untagged) == "running"
    finally:
        master.stop()
    moto.client().terminate_instances(InstanceIds=[other_farm, untagged])


def test_reaper_passes_spare_the_instances_workers_own(moto, amis, master_template, tmp_path):
    master = reaper_master(moto, amis, master_template, tmp_path / "master", interval=1)
    master.start()
    try:
        brid = master.force("hold")
        owned = only_instance(master, "ec2-hold-1")["InstanceId"]
        # Same farm, same worker tag, but not the worker's instance: an orphan.
        late_orphan = launch_tagged(moto, amis["new"], {
            "rustfarm:farm": REAPER_FARM, "rustfarm:worker": "ec2-hold-1"})
        wait_for("the late orphan to be terminated",
                 lambda: master.state(late_orphan) in ("shutting-down", "terminated"), 20)
        time.sleep(2.5)  # two more passes
        assert master.state(owned) == "running"
        assert f"terminating orphan instance {owned}" not in master.log
        master.cancel(brid)
        assert master.state(owned) in ("shutting-down", "terminated")
    finally:
        master.stop()


def add_master_row(database: Path, name: str) -> None:
    """Another master of the farm, as the shared database shows it: active, just seen."""
    with sqlite3.connect(database, timeout=30) as db:
        db.execute("INSERT INTO masters (name, name_hash, active, last_active) "
                   "VALUES (?, ?, 1, ?)",
                   (name, hashlib.sha1(name.encode()).hexdigest(), int(time.time())))


def test_reaper_spares_an_active_masters_instances_and_reaps_a_dead_ones(
        moto, amis, master_template, tmp_path):
    master = reaper_master(moto, amis, master_template, tmp_path / "master", interval=1)
    master.start()
    try:
        [mine] = [m["name"] for m in master.get("/masters")["masters"]]
        other, gone = "build2:/srv/farm/masters/b", "build3:/srv/farm/masters/c"
        add_master_row(master.basedir / "state.sqlite", other)
        assert other in [m["name"] for m in master.get("/masters")["masters"] if m["active"]]

        def launched_by(name: str, worker: str) -> str:
            return launch_tagged(moto, amis["new"], {
                "rustfarm:farm": REAPER_FARM, "rustfarm:worker": worker,
                "rustfarm:master": name})

        others = launched_by(other, "ec2-hold-1")      # same worker name, another master
        dead = launched_by(gone, "ec2-hold-1")         # a master the database never had
        own_orphan = launched_by(mine, "ec2-gone-3")   # this master's, no worker owns it
        wait_for("the orphans to be terminated", lambda: all(
            master.state(i) in ("shutting-down", "terminated") for i in (dead, own_orphan)), 20)
        assert (f"terminating orphan instance {dead} in {REGION} (worker ec2-hold-1, pool ?, "
                "running, age ") in master.log
        assert f"launched by master {gone}, which is not active)" in master.log
        time.sleep(2.5)  # two more passes
        assert master.state(others) == "running"

        # The other master stops answering: once the database has it inactive (the
        # others' heartbeat check), its instances are orphans too.
        with sqlite3.connect(master.basedir / "state.sqlite", timeout=30) as db:
            db.execute("UPDATE masters SET active = 0 WHERE name = ?", (other,))
        wait_for("the inactive master's instance to be terminated",
                 lambda: master.state(others) in ("shutting-down", "terminated"), 20)
        assert f"launched by master {other}, which is not active)" in master.log
    finally:
        master.stop()
