"""The EC2 calls of an EC2 worker, as plain functions of a boto3 client.

Each blocks: the worker calls them from a thread (``deferToThread``). They know
nothing of Buildbot but the two exceptions that tell its latent-worker life cycle
what happened; the life cycle itself is in worker.py.
"""

from __future__ import annotations

import math
import time

from buildbot.interfaces import LatentWorkerCannotSubstantiate, LatentWorkerFailedToSubstantiate

from .api import TAG_FARM, TAG_MASTER, TAG_POOL, TAG_WORKER, master_tag, tag_list
from .launch import Ec2Launch

# An instance in one of these states has left pending/running for good.
ENDED_STATES = ("shutting-down", "terminated", "stopping", "stopped")


class InstanceEnded(Exception):
    """An instance left pending/running on its own (Spot reclaim, boot failure, ...)."""

    def __init__(self, instance_id: str, state: str, reason: str):
        super().__init__(f"instance {instance_id} is {state}: {reason}")
        self.instance_id, self.state, self.reason = instance_id, state, reason


def find_image(client, launch: Ec2Launch, worker: str) -> dict:
    """The AMI to launch: the one named, or the newest of ami_name's owned by ami_owner."""
    if launch.ami:
        images = client.describe_images(ImageIds=[launch.ami])["Images"]
        wanted = launch.ami
    else:
        images = client.describe_images(
            Owners=[launch.ami_owner],
            Filters=[{"Name": "name", "Values": [launch.ami_name]},
                     {"Name": "state", "Values": ["available"]}])["Images"]
        wanted = f"name {launch.ami_name!r} owned by {launch.ami_owner}"
    if not images:
        raise LatentWorkerCannotSubstantiate(
            f"{worker}: no AMI matches {wanted} in {launch.region}")
    # Newest first; the id breaks ties so the choice never depends on list order.
    return max(images, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))


def launch_params(launch: Ec2Launch, worker: str, image: dict, instance_type: str,
                  user_data: str, master: str | None = None) -> dict:
    """RunInstances' parameters: tagged at launch (so nothing untagged ever exists), with
    the launching master where it is known, IMDSv2 only, terminated when it powers off."""
    tags = {"Name": f"{launch.farm}/{worker}", **launch.tags,
            TAG_FARM: launch.farm, TAG_POOL: launch.pool, TAG_WORKER: worker}
    if master:
        tags[TAG_MASTER] = master_tag(master)
    params = {
        "ImageId": image["ImageId"],
        "InstanceType": instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data,
        # IMDSv2 for the instance's own processes alone: a token's answer does not
        # cross a container's network hop, so no container reads user-data.
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                            "HttpPutResponseHopLimit": 1},
        # The boot script powers off when the worker ends: that must terminate.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [{"ResourceType": kind, "Tags": tag_list(tags)}
                              for kind in ("instance", "volume")],
    }
    if launch.subnet_id:
        params["SubnetId"] = launch.subnet_id
    if launch.security_group_ids:
        params["SecurityGroupIds"] = list(launch.security_group_ids)
    if launch.keypair_name:
        params["KeyName"] = launch.keypair_name
    if launch.instance_profile:
        key = "Arn" if launch.instance_profile.startswith("arn:") else "Name"
        params["IamInstanceProfile"] = {key: launch.instance_profile}
    if launch.volume_size_gb and image.get("RootDeviceName"):
        snapshot_size = next(
            (m.get("Ebs", {}).get("VolumeSize") for m in image.get("BlockDeviceMappings", [])
             if m.get("DeviceName") == image["RootDeviceName"]), None)
        if snapshot_size and snapshot_size > launch.volume_size_gb:
            raise LatentWorkerCannotSubstantiate(
                f"{worker}: volume_size_gb {launch.volume_size_gb} is smaller than "
                f"the {snapshot_size} GiB root snapshot of {image['ImageId']}")
        params["BlockDeviceMappings"] = [{
            "DeviceName": image["RootDeviceName"],
            "Ebs": {"VolumeSize": launch.volume_size_gb, "VolumeType": "gp3",
                    "DeleteOnTermination": True}}]
    return params


def with_spot(params: dict, max_price: float | None) -> dict:
    """The parameters for a one-time Spot instance (RunInstances' market options)."""
    options = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
    if max_price is not None:
        options["MaxPrice"] = f"{max_price:.6f}"
    return {**params, "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": options}}


def run_instance(client, params: dict) -> str:
    return client.run_instances(**params)["Instances"][0]["InstanceId"]


def describe(client, instance_id: str) -> dict | None:
    """The instance's description; None when EC2 does not know it (any more)."""
    from botocore.exceptions import ClientError

    try:
        reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    for reservation in reservations:
        for instance in reservation["Instances"]:
            return instance
    return None


def state_reason(description: dict) -> str:
    return description.get("StateReason", {}).get("Message", "no reason given")


def ended(description: dict | None, instance_id: str) -> str | None:
    """Why the instance is gone or going, or None while it is pending or running."""
    if description is None:
        return f"instance {instance_id} no longer exists"
    state = description["State"]["Name"]
    if state in ENDED_STATES:
        return f"instance {instance_id} is {state} ({state_reason(description)})"
    return None


def wait_until_running(client, instance_id: str, started: float, timeout: float,
                       poll_interval: float, worker: str) -> str:
    """botocore's instance_running waiter, within what is left of ``timeout`` since
    ``started`` (it waits out EC2 not knowing a new id yet, and gives up at once on an
    instance that is ending); InstanceEnded or LatentWorkerFailedToSubstantiate."""
    from botocore.exceptions import WaiterError
    left = max(0.0, timeout - (time.monotonic() - started))
    try:
        client.get_waiter("instance_running").wait(
            InstanceIds=[instance_id],
            WaiterConfig={"Delay": poll_interval,
                          "MaxAttempts": max(1, math.ceil(left / poll_interval))})
    except WaiterError:
        description = describe(client, instance_id)
        state = description["State"]["Name"] if description else "pending"
        if state in ENDED_STATES:
            raise InstanceEnded(instance_id, state, state_reason(description)) from None
        raise LatentWorkerFailedToSubstantiate(
            worker, f"instance {instance_id} still {state} after {timeout}s") from None
    return "running"


def terminate(client, instance_id: str) -> tuple[str, str] | None:
    """Terminate the instance: its (previous, current) state, None when already gone."""
    from botocore.exceptions import ClientError

    try:
        reply = client.terminate_instances(InstanceIds=[instance_id])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    states = {i["InstanceId"]: (i["PreviousState"]["Name"], i["CurrentState"]["Name"])
              for i in reply.get("TerminatingInstances", [])}
    return states.get(instance_id, ("unknown", "unknown"))
