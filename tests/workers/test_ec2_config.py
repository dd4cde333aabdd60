"""Loading a configuration with EC2 workers talks to nobody: no AWS, no metadata service.

Every AWS endpoint boto3 could use (EC2 and the instance-metadata service that
hands out role credentials) is pointed at a loopback listener that counts
connection attempts. Upstream's EC2LatentWorker, built the same way, is the
control: it does connect, so the listener would see ours if it did.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from buildbot import config as bbconfig
from buildbot.config.errors import ConfigErrors
from buildbot.process.properties import Secret
from buildbot.worker.ec2 import EC2LatentWorker

from rustfarm.names import UPLOAD_BUILDER_PROPERTY
from rustfarm.workers.ec2.launch import Ec2Launch
from rustfarm.workers.ec2.reaper import FarmEC2Reaper
from rustfarm.workers.ec2.worker import FarmEC2LatentWorker
from tests.support.moto_server import ConnectionRecorder, aws_env, aws_environment, free_port

BUILDBOT = Path(sys.executable).with_name("buildbot")

WORKER_ARGS = dict(
    farm="rustfarm", pool="mips", region="eu-west-1", ami_name="rustfarm-worker-*",
    ami_owner="self", instance_type="c7a.large", spot=True, max_spot_price=0.08,
    image="registry.example.com/rustfarm/worker:1", master_host="buildmaster.example.com",
    master_port=9989, subnet_id="subnet-123", security_group_ids=["sg-1"],
    instance_profile="rustfarm-worker", keypair_name="ops", volume_size_gb=40,
    tags={"team": "compilers"})


@pytest.fixture
def recorder():
    listener = ConnectionRecorder()
    yield listener
    listener.close()


def no_aws_but(recorder, **extra):
    """No credentials; both the EC2 endpoint and the metadata service are the recorder."""
    return aws_env(recorder.url, credentials=False, AWS_EC2_METADATA_DISABLED="false",
                   AWS_EC2_METADATA_SERVICE_ENDPOINT=recorder.url, **extra)


def test_constructing_workers_and_reaper_makes_no_connection(recorder):
    with no_aws_but(recorder):
        workers = [FarmEC2LatentWorker(f"ec2-mips-{i}", Secret("ec2-password"),
                                       Ec2Launch(**WORKER_ARGS))
                   for i in range(1, 4)]
        workers.append(FarmEC2LatentWorker(
            "ec2-explicit-1", None, Ec2Launch(**{**WORKER_ARGS, "ami_name": None,
                                                 "ami_owner": None,
                                                 "ami": "ami-0123456789abcdef0",
                                                 "aws_access_key_id": Secret("aws-id"),
                                                 "aws_secret_access_key": Secret("aws-key"),
                                                 "endpoint_url": recorder.url})))
        reaper = FarmEC2Reaper(farm="rustfarm", interval=60)
        time.sleep(0.3)  # let a late connection attempt reach the recorder
    assert recorder.connections == 0
    assert reaper.name == "ec2-reaper-rustfarm"
    assert [w.name for w in workers] == ["ec2-mips-1", "ec2-mips-2", "ec2-mips-3",
                                         "ec2-explicit-1"]


def test_upstream_worker_does_connect_so_the_recorder_would_notice(recorder):
    with no_aws_but(recorder, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
                    AWS_MAX_ATTEMPTS="1"):
        with pytest.raises(Exception):
            EC2LatentWorker("upstream", "pw", "t3.micro", ami="ami-1", keypair_name="k",
                            security_name="s", region="eu-west-1")
    assert recorder.connections >= 1


def test_buildbot_checkconfig_passes_without_credentials_or_endpoint(tmp_path, recorder):
    closed_port = free_port()  # nothing listens there
    (tmp_path / "master.cfg").write_text(textwrap.dedent(f"""\
        from buildbot.plugins import schedulers, steps, util
        from buildbot.process.factory import BuildFactory
        from rustfarm.workers.ec2.launch import Ec2Launch
        from rustfarm.workers.ec2.reaper import FarmEC2Reaper
        from rustfarm.workers.ec2.worker import FarmEC2LatentWorker

        args = {WORKER_ARGS!r}
        names = ["ec2-mips-1", "ec2-mips-2"]
        c = BuildmasterConfig = {{}}
        c["workers"] = [FarmEC2LatentWorker(n, util.Secret("ec2-password"), Ec2Launch(**args))
                        for n in names]
        c["builders"] = [util.BuilderConfig(
            name="mips", workernames=names,
            factory=BuildFactory([steps.ShellCommand(command=["true"])]))]
        c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["mips"])]
        c["services"] = [FarmEC2Reaper(farm="rustfarm")]
        c["protocols"] = {{"pb": {{"port": "tcp:9989:interface=127.0.0.1"}}}}
        c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
        c["buildbotNetUsageData"] = None
        """))
    env = aws_environment(f"http://127.0.0.1:{closed_port}", credentials=False)
    env.update(AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=recorder.url)
    checked = subprocess.run([str(BUILDBOT), "checkconfig", str(tmp_path)], env=env,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Config file is good!" in checked.stdout
    assert recorder.connections == 0


@pytest.mark.parametrize("change, message", [
    ({"ami": "ami-1"}, "either ami"),
    ({"ami_name": None, "ami_owner": None}, "either ami"),
    ({"ami_owner": None}, "ami_owner"),
    ({"spot_fallback": "maybe"}, "spot_fallback"),
    ({"image": "worker:1"}, "REGISTRY/REPOSITORY:TAG"),
    ({"master_host": "bad host"}, "master_host"),
    ({"master_port": 0}, "master_port"),
    ({"tags": {"rustfarm:farm": "other"}}, "reserved prefix"),
    ({"tags": {"aws:x": "y"}}, "reserved prefix"),
    ({"farm": ""}, "farm"),
    ({"aws_access_key_id": "only-half"}, "both aws_access_key_id"),
    ({"max_spot_price": -1}, "max_spot_price"),
    ({"connect_timeout": 0}, "connect_timeout"),
    ({"max_lifetime": 0}, "max_lifetime"),
    ({"container_memory": "lots"}, "container_memory"),
])
def test_configuration_mistakes_are_config_errors(change, message):
    with pytest.raises(ConfigErrors) as error:
        FarmEC2LatentWorker("ec2-mips-1", "pw", Ec2Launch(**{**WORKER_ARGS, **change}))
    assert message in str(error.value)


def test_worker_names_must_fit_in_user_data():
    with pytest.raises(ConfigErrors, match="user-data"):
        FarmEC2LatentWorker("ec2 mips 1", "pw", Ec2Launch(**WORKER_ARGS))


def test_errors_are_collected_while_a_config_file_loads():
    with bbconfig.errors.capture_config_errors() as errors:
        FarmEC2LatentWorker("ec2-mips-1", "pw", Ec2Launch(**{**WORKER_ARGS, "region": None,
                                                               "spot_fallback": "no"}))
    assert len(errors.errors) == 2


class PropertiesOnly:
    """What renderWorkerProps asks of a build: to render with its properties."""

    def __init__(self, **properties):
        from buildbot.process.properties import Properties
        self.properties = Properties(**properties)

    def render(self, value):
        return self.properties.render(value)


def test_an_uploads_instance_is_never_a_projects():
    """Its relay is read-only: the worker props of an upload builder's build differ
    from a project's, so Buildbot does not give one's instance to the other."""
    from twisted.internet import defer
    worker = FarmEC2LatentWorker("ec2-mips-1", "pw", Ec2Launch(**WORKER_ARGS))
    worker.launch = Ec2Launch(**WORKER_ARGS)      # what reconfigService sets
    rendered = []
    upload_builder = {"image": "rustfarm/x:1", UPLOAD_BUILDER_PROPERTY: True}
    # A project builder's build that carries a job (a change may carry any property)
    # is still a project's.
    for properties in ({"image": "rustfarm/x:1", "compile_job": "j0"},
                       {**upload_builder, "compile_job": "j1"},
                       {**upload_builder, "compile_job": "j2"}):
        defer.ensureDeferred(defer.maybeDeferred(
            worker.renderWorkerProps, PropertiesOnly(**properties))).addCallback(rendered.append)
    project, upload, other_upload = rendered
    assert project != upload and upload == other_upload
    assert upload[-1] is True and project[-1] is False
