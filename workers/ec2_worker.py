"""An EC2 latent worker for one farm pool: one instance per build, tagged, IMDSv2 only.

:class:`FarmEC2LatentWorker` keeps Buildbot's latent-worker life cycle
(substantiate, start_instance, check_instance until the worker connects,
insubstantiate, stop_instance) and changes what upstream's EC2LatentWorker does
inside it:

* nothing talks to AWS while the configuration loads; the AMI is looked up, and
  endpoint, credentials and user-data are rendered, when an instance starts;
* instance and root volume are tagged at launch (farm, pool, worker, user tags),
  so that nothing untagged ever exists; the reaper relies on these tags;
* IMDSv2 is required (hop limit 2, for the worker container), and powering off
  terminates the instance, so the AMI's boot script ending never leaves a
  stopped instance behind;
* an instance that stops existing, or whose worker has not connected within
  ``connect_timeout``, fails the substantiation: Buildbot terminates it through
  stop_instance and returns the build request to the queue (build result RETRY);
* once its worker is connected, the instance is still checked every
  ``running_check_interval`` seconds: if it ended (a Spot reclaim, a crash that
  left no TCP reset behind) the worker's connection is dropped, so the build is
  retried now rather than when TCP gives up;
* Spot is requested with RunInstances' InstanceMarketOptions; when EC2 has no
  Spot capacity the worker falls back to on-demand, or fails the build with a
  clear reason when ``spot_fallback='fail'``.

The worker's password (``util.Secret`` or text; random when None) reaches the
instance only inside user-data: it is never logged nor put in a property.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from twisted.internet import defer, task, threads
from twisted.python import log

from buildbot import config
from buildbot.interfaces import LatentWorkerCannotSubstantiate, LatentWorkerFailedToSubstantiate
from buildbot.util.latent import CompatibleLatentWorkerMixin
from buildbot.worker.ec2 import EC2LatentWorker
from buildbot.worker.latent import AbstractLatentWorker

from .ec2_api import (SPOT_UNAVAILABLE_CODES, TAG_FARM, TAG_POOL, TAG_WORKER, Ec2Connector,
                      check_connection_settings, check_tags, tag_list)
from .userdata import UserDataError, render_user_data, value_problem

SPOT_FALLBACKS = ("on-demand", "fail")
ENDED_STATES = ("shutting-down", "terminated", "stopping", "stopped")


class InstanceEnded(Exception):
    """An instance left pending/running on its own (Spot reclaim, boot failure, ...)."""

    def __init__(self, instance_id: str, state: str, reason: str):
        super().__init__(f"instance {instance_id} is {state}: {reason}")
        self.instance_id, self.state, self.reason = instance_id, state, reason


@dataclass(frozen=True)
class LaunchedInstance:
    """The instance a worker owns (upstream keeps a boto3 resource; only the id is used)."""

    id: str
    market: str


class FarmEC2LatentWorker(CompatibleLatentWorkerMixin, EC2LatentWorker):
    """One worker name of an EC2 pool; each substantiation launches a fresh instance."""

    # Seconds between DescribeInstances calls while an instance starts (tests lower it).
    poll_interval = 2.0

    def __init__(self, name, password=None, **kwargs):
        # Upstream's EC2LatentWorker.__init__ connects to AWS (regions, key pair,
        # security group, images); skip it and configure like any BuildbotService:
        # checkConfig() now, reconfigService() when the master starts or reconfigures.
        AbstractLatentWorker.__init__(self, name, password, **kwargs)
        self.instance: LaunchedInstance | None = None
        self._launching = False
        self._launched_at: float | None = None
        self._running_check: task.LoopingCall | None = None
        self._connection: dict | None = None
        self._password_source = None
        self._connector = Ec2Connector()

    # -- configuration ---------------------------------------------------------

    def checkConfig(self, name, password=None, *, farm=None, pool=None, region=None,
                    instance_type=None, image=None, master_host=None, master_port=None,
                    ami=None, ami_name=None, ami_owner=None,
                    spot=False, max_spot_price=None, spot_fallback="on-demand",
                    subnet_id=None, security_group_ids=None, instance_profile=None,
                    keypair_name=None, volume_size_gb=None, tags=None,
                    container_memory=None, container_cpus=None, container_pids_limit=None,
                    max_lifetime=None,
                    build_wait_timeout=0, connect_timeout=600, missing_timeout=None,
                    check_instance_interval=10, running_check_interval=60, endpoint_url=None,
                    aws_access_key_id=None, aws_secret_access_key=None,
                    aws_session_token=None, **kwargs):
        where = f"FarmEC2LatentWorker {name!r}"
        if isinstance(name, str) and value_problem("name", name):
            config.error(f"{where}: the name {value_problem('name', name)} "
                         "(it travels in the instance's user-data)")
        for arg, value in (("farm", farm), ("pool", pool), ("region", region),
                           ("master_host", master_host)):
            if not value or not isinstance(value, str):
                config.error(f"{where}: {arg} must be a non-empty string")
        if instance_type is None or (isinstance(instance_type, str) and not instance_type):
            config.error(f"{where}: instance_type is required")
        if image is None or (isinstance(image, str) and not image):
            config.error(f"{where}: image (the worker's container image) is required")
        elif isinstance(image, str) and value_problem("image", image):
            config.error(f"{where}: image {image!r} {value_problem('image', image)}")
        if isinstance(master_host, str) and master_host and value_problem("master", master_host):
            config.error(f"{where}: master_host {value_problem('master', master_host)}")
        if not isinstance(master_port, int) or not 1 <= master_port <= 65535:
            config.error(f"{where}: master_port must be a TCP port number")
        if bool(ami) == bool(ami_name):
            config.error(f"{where}: give either ami (an AMI id) or ami_name (with ami_owner)")
        if ami_name and not ami_owner:
            config.error(f"{where}: ami_name needs ami_owner (an account id, 'self' or "
                         "'amazon'), so that nobody else's image can match")
        if not isinstance(spot, bool):
            config.error(f"{where}: spot must be true or false")
        if spot_fallback not in SPOT_FALLBACKS:
            config.error(f"{where}: spot_fallback must be one of {', '.join(SPOT_FALLBACKS)}")
        if max_spot_price is not None and (not isinstance(max_spot_price, (int, float))
                                           or max_spot_price <= 0):
            config.error(f"{where}: max_spot_price must be a positive number (USD per hour)")
        if security_group_ids is not None and (
                isinstance(security_group_ids, str)
                or not all(isinstance(g, str) for g in security_group_ids)):
            config.error(f"{where}: security_group_ids must be a list of strings")
        if volume_size_gb not in (None, 0) and (not isinstance(volume_size_gb, int)
                                                or volume_size_gb < 1):
            config.error(f"{where}: volume_size_gb must be a whole number of GiB")
        check_tags(tags, where)
        for arg, key, value in (("container_memory", "memory", container_memory),
                                ("container_cpus", "cpus", container_cpus),
                                ("container_pids_limit", "pids_limit", container_pids_limit),
                                ("max_lifetime", "max_lifetime", max_lifetime)):
            if value is not None and value_problem(key, str(value)):
                config.error(f"{where}: {arg} {value_problem(key, str(value))}")
        for arg, value in (("build_wait_timeout", build_wait_timeout),
                           ("connect_timeout", connect_timeout),
                           ("check_instance_interval", check_instance_interval),
                           ("running_check_interval", running_check_interval)):
            if not isinstance(value, (int, float)):
                config.error(f"{where}: {arg} must be a number of seconds")
        if isinstance(connect_timeout, (int, float)) and connect_timeout <= 0:
            config.error(f"{where}: connect_timeout must be positive")
        check_connection_settings(endpoint_url, aws_access_key_id, aws_secret_access_key, where)
        if missing_timeout is not None:
            kwargs["missing_timeout"] = missing_timeout
        super().checkConfig(
            name, password, build_wait_timeout=build_wait_timeout,
            check_instance_interval=check_instance_interval, **kwargs)

    def reconfigService(self, name, password=None, *, farm, pool, region, instance_type, image,
                        master_host, master_port, ami=None, ami_name=None, ami_owner=None,
                        spot=False, max_spot_price=None, spot_fallback="on-demand",
                        subnet_id=None, security_group_ids=None, instance_profile=None,
                        keypair_name=None, volume_size_gb=None, tags=None,
                        container_memory=None, container_cpus=None, container_pids_limit=None,
                        max_lifetime=None,
                        build_wait_timeout=0, connect_timeout=600, missing_timeout=None,
                        check_instance_interval=10, running_check_interval=60,
                        endpoint_url=None,
                        aws_access_key_id=None, aws_secret_access_key=None,
                        aws_session_token=None, **kwargs):
        self.farm, self.pool, self.region = farm, pool, region
        self.instance_type, self.image = instance_type, image
        self.master_host, self.master_port = master_host, master_port
        self.ami, self.ami_name, self.ami_owner = ami or None, ami_name or None, ami_owner or None
        self.spot_instance, self.max_spot_price = spot, max_spot_price
        self.spot_fallback = spot_fallback
        self.subnet_id = subnet_id or None
        self.security_group_ids = list(security_group_ids or ()) or None
        self.instance_profile = instance_profile or None
        self.keypair_name = keypair_name or None
        self.volume_size_gb = volume_size_gb or None
        self.tags = dict(tags or {})
        self.user_data_options = {"memory": container_memory, "cpus": container_cpus,
                                  "pids_limit": container_pids_limit,
                                  "max_lifetime": max_lifetime}
        self.connect_timeout = connect_timeout
        self.running_check_interval = running_check_interval
        self.endpoint_url = endpoint_url
        self.credentials = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        # Kept unrendered: start_instance renders it again, so a rotated secret is used.
        self._password_source = password
        if password is None:
            password = self.getRandomPass()
        if missing_timeout is not None:
            kwargs["missing_timeout"] = missing_timeout
        return super().reconfigService(
            name, password, build_wait_timeout=build_wait_timeout,
            check_instance_interval=check_instance_interval, **kwargs)

    # -- what the reaper asks ----------------------------------------------------

    @property
    def live_instance_id(self) -> str | None:
        instance = self.instance
        return instance.id if instance is not None else None

    @property
    def is_launching(self) -> bool:
        """True while RunInstances may have made an instance we do not know yet."""
        return self._launching

    # -- start -----------------------------------------------------------------

    def renderWorkerProps(self, build):
        return build.render((self.image, self.instance_type))

    @defer.inlineCallbacks
    def start_instance(self, build):
        if self.instance is not None:
            raise ValueError("instance active")
        image, instance_type = yield self.renderWorkerPropsOnStart(build)
        endpoint_url, key_id, secret_key, token = yield self.renderSecrets(
            self.endpoint_url, *self.credentials)
        if self._password_source is not None:
            password = yield self.renderSecrets(self._password_source)
            if password != self.password and self.registration is not None:
                # The secret changed since the last (re)configuration: make the
                # master accept the new password before the instance gets it.
                self.password = password
                yield self.registration.update(self, self.master.config)
        try:
            user_data = render_user_data(
                image=image, master=self.master_host, port=self.master_port,
                name=self.workername, password=self.password,
                **{k: v for k, v in self.user_data_options.items() if v is not None})
        except UserDataError as e:
            raise LatentWorkerCannotSubstantiate(
                f"{self.workername}: cannot write user-data: {e}") from None
        self._connection = {"region": self.region, "endpoint_url": endpoint_url,
                            "access_key_id": key_id, "secret_access_key": secret_key,
                            "session_token": token}
        self._launching = True
        try:
            yield threads.deferToThread(self._thd_start, instance_type, user_data)
        finally:
            self._launching = False
        if build is not None:
            # The build that substantiated the worker runs on this instance.
            build.setProperty("instance", self.instance.id, "Worker")
        return True

    def _client(self):
        return self._connector.client(**self._connection)

    def _thd_start(self, instance_type, user_data):
        from botocore.exceptions import ClientError

        client = self._client()
        image = self._thd_find_image(client)
        params = self._launch_params(image, instance_type, user_data)
        if self.spot_instance:
            try:
                self._thd_launch(client, params, image, spot=True)
                return
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code not in SPOT_UNAVAILABLE_CODES:
                    raise
                reason = f"{code}: {e.response['Error'].get('Message', '')}".rstrip(": ")
            except InstanceEnded as e:
                self._thd_forget_instance(client)
                reason = f"Spot instance {e.instance_id} ended before running ({e.reason})"
            if self.spot_fallback == "fail":
                raise LatentWorkerCannotSubstantiate(
                    f"{self.workername}: no Spot capacity for {instance_type} in "
                    f"{self.region} ({reason}) and spot_fallback is 'fail'")
            log.msg(f"{self._tag}: no Spot capacity for {instance_type} ({reason}); "
                    "launching an on-demand instance instead")
        try:
            self._thd_launch(client, params, image, spot=False)
        except InstanceEnded as e:
            raise LatentWorkerFailedToSubstantiate(self.workername, str(e)) from None

    def _thd_find_image(self, client) -> dict:
        if self.ami:
            images = client.describe_images(ImageIds=[self.ami])["Images"]
            wanted = self.ami
        else:
            images = client.describe_images(
                Owners=[self.ami_owner],
                Filters=[{"Name": "name", "Values": [self.ami_name]},
                         {"Name": "state", "Values": ["available"]}])["Images"]
            wanted = f"name {self.ami_name!r} owned by {self.ami_owner}"
        if not images:
            raise LatentWorkerCannotSubstantiate(
                f"{self.workername}: no AMI matches {wanted} in {self.region}")
        # Newest first; the id breaks ties so the choice never depends on list order.
        return max(images, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))

    def _launch_params(self, image: dict, instance_type: str, user_data: str) -> dict:
        tags = {"Name": f"{self.farm}/{self.workername}", **self.tags,
                TAG_FARM: self.farm, TAG_POOL: self.pool, TAG_WORKER: self.workername}
        params = {
            "ImageId": image["ImageId"],
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": user_data,
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                                "HttpPutResponseHopLimit": 2},
            # The boot script powers off when the worker ends: that must terminate.
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecifications": [{"ResourceType": kind, "Tags": tag_list(tags)}
                                  for kind in ("instance", "volume")],
        }
        if self.subnet_id:
            params["SubnetId"] = self.subnet_id
        if self.security_group_ids:
            params["SecurityGroupIds"] = self.security_group_ids
        if self.keypair_name:
            params["KeyName"] = self.keypair_name
        if self.instance_profile:
            key = "Arn" if self.instance_profile.startswith("arn:") else "Name"
            params["IamInstanceProfile"] = {key: self.instance_profile}
        if self.volume_size_gb and image.get("RootDeviceName"):
            snapshot_size = next(
                (m.get("Ebs", {}).get("VolumeSize") for m in image.get("BlockDeviceMappings", [])
                 if m.get("DeviceName") == image["RootDeviceName"]), None)
            if snapshot_size and snapshot_size > self.volume_size_gb:
                raise LatentWorkerCannotSubstantiate(
                    f"{self.workername}: volume_size_gb {self.volume_size_gb} is smaller than "
                    f"the {snapshot_size} GiB root snapshot of {image['ImageId']}")
            params["BlockDeviceMappings"] = [{
                "DeviceName": image["RootDeviceName"],
                "Ebs": {"VolumeSize": self.volume_size_gb, "VolumeType": "gp3",
                        "DeleteOnTermination": True}}]
        return params

    def _thd_launch(self, client, params: dict, image: dict, spot: bool) -> None:
        params = dict(params)
        market = "on-demand"
        if spot:
            market = "Spot"
            options = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            if self.max_spot_price is not None:
                options["MaxPrice"] = f"{self.max_spot_price:.6f}"
            params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
        log.msg(f"{self._tag}: launching {market} {params['InstanceType']} instance from "
                f"{image['ImageId']} ({image.get('Name', 'no name')}) in {self.region}")
        started = time.monotonic()
        reply = client.run_instances(**params)
        instance_id = reply["Instances"][0]["InstanceId"]
        # Known from now on: stop_instance() terminates it whatever happens next.
        self.instance = LaunchedInstance(instance_id, market)
        self._launched_at = started
        log.msg(f"{self._tag}: launched {market} instance {instance_id}")
        state = self._thd_wait_until_running(client, instance_id, started)
        log.msg(f"{self._tag}: instance {instance_id} is {state} after "
                f"{time.monotonic() - started:.0f}s; waiting for its worker to connect")

    def _thd_describe(self, client, instance_id: str) -> dict | None:
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

    def _thd_wait_until_running(self, client, instance_id: str, started: float) -> str:
        while True:
            description = self._thd_describe(client, instance_id)
            # Right after RunInstances EC2 may not know the id yet (eventual consistency).
            state = description["State"]["Name"] if description else "pending"
            if state == "running":
                return state
            if state in ENDED_STATES:
                reason = description.get("StateReason", {}).get("Message", "no reason given")
                raise InstanceEnded(instance_id, state, reason)
            if time.monotonic() - started > self.connect_timeout:
                raise LatentWorkerFailedToSubstantiate(
                    self.workername, f"instance {instance_id} still {state} after "
                    f"{self.connect_timeout}s")
            time.sleep(self.poll_interval)

    def _thd_forget_instance(self, client) -> None:
        """Terminate the current instance (a failed Spot one) and forget it."""
        instance, self.instance = self.instance, None
        if instance is not None:
            self._thd_terminate(client, instance.id)

    # -- while waiting for the worker to connect ----------------------------------

    def check_instance(self):
        # Upstream calls this every check_instance_interval seconds from the end of
        # start_instance() until the worker connects; (False, why) fails the
        # substantiation, which terminates the instance and retries the build.
        instance, launched = self.instance, self._launched_at
        if instance is None or launched is None:
            return defer.succeed((True, ""))
        waited = time.monotonic() - launched
        if waited > self.connect_timeout:
            return defer.succeed((False, f"the worker on instance {instance.id} did not "
                                         f"connect within {self.connect_timeout}s"))
        return threads.deferToThread(self._thd_check_instance, instance.id)

    def _thd_check_instance(self, instance_id: str):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            description = self._thd_describe(self._client(), instance_id)
        except (BotoCoreError, ClientError) as e:
            # AWS not answering is no proof the instance failed; connect_timeout still applies.
            log.msg(f"{self._tag}: could not check instance {instance_id}: {e}")
            return (True, "")
        if description is None:
            return (False, f"instance {instance_id} no longer exists")
        state = description["State"]["Name"]
        if state in ENDED_STATES:
            reason = description.get("StateReason", {}).get("Message", "no reason given")
            return (False, f"instance {instance_id} is {state} ({reason})")
        return (True, "")

    # -- while the worker is connected ---------------------------------------------

    @defer.inlineCallbacks
    def attached(self, conn):
        yield super().attached(conn)
        if self.instance is not None and self.conn is conn and self.running_check_interval > 0:
            self._stop_running_check()
            self._running_check = task.LoopingCall(self._check_running_instance, conn)
            self._running_check.clock = self.master.reactor
            self._running_check.start(self.running_check_interval, now=False).addErrback(
                log.err, f"{self._tag}: checking the running instance")

    def detached(self):
        self._stop_running_check()
        return super().detached()

    def _stop_running_check(self):
        if self._running_check is not None and self._running_check.running:
            self._running_check.stop()
        self._running_check = None

    @defer.inlineCallbacks
    def _check_running_instance(self, conn):
        instance = self.instance
        if instance is None or self.conn is not conn:
            self._stop_running_check()
            return
        good, why = yield threads.deferToThread(self._thd_check_instance, instance.id)
        if not good and self.conn is conn and self.instance is instance:
            log.msg(f"{self._tag}: {why}; dropping its worker's connection so that the "
                    "build is retried")
            self._stop_running_check()
            conn.loseConnection()

    # -- stop ------------------------------------------------------------------

    def stop_instance(self, fast=False):
        self._stop_running_check()
        # Not waiting for "terminated" (upstream does unless fast): once EC2 says
        # shutting-down the instance is gone for good, and the worker is free to
        # launch the next one at once.
        instance, self.instance = self.instance, None
        self._launched_at = None
        self.resetWorkerPropsOnStop()
        if instance is None:
            return defer.succeed(None)
        connection = self._connection
        return threads.deferToThread(
            lambda: self._thd_terminate(self._connector.client(**connection), instance.id))

    def _thd_terminate(self, client, instance_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            reply = client.terminate_instances(InstanceIds=[instance_id])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
                log.msg(f"{self._tag}: instance {instance_id} is already gone")
                return
            raise
        states = {i["InstanceId"]: (i["PreviousState"]["Name"], i["CurrentState"]["Name"])
                  for i in reply.get("TerminatingInstances", [])}
        before, now = states.get(instance_id, ("unknown", "unknown"))
        log.msg(f"{self._tag}: terminating instance {instance_id} ({before} -> {now})")

    @property
    def _tag(self) -> str:
        return f"{self.__class__.__name__} {self.workername}"
