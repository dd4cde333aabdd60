"""An EC2 latent worker for one farm pool: one instance per build, tagged, IMDSv2 only.

Shaped like Buildbot's own container workers (Docker, Kubernetes): the latent worker
base with the compatible mixin, one settings value passed in (``Ec2Launch``,
launch.py), the EC2 calls in a plain module (instances.py). The worker's password
reaches the instance only inside user-data: it is never logged nor put in a property.
"""


from __future__ import annotations

import time
from dataclasses import dataclass

from twisted.internet import defer, task, threads
from twisted.python import log

from buildbot import config
from buildbot.interfaces import LatentWorkerCannotSubstantiate, LatentWorkerFailedToSubstantiate
from buildbot.process.properties import renderer
from buildbot.util.latent import CompatibleLatentWorkerMixin
from buildbot.worker.latent import AbstractLatentWorker

from rustfarm.names import is_untrusted
from rustfarm.userdata import UserDataError, render_user_data, value_problem

from . import instances as ec2
from ..connection import PromptConnectionMixin
from ..stopped_builds import NothingStartsForStoppedBuilds
from .api import SPOT_UNAVAILABLE_CODES, Ec2Connector
from .instances import InstanceEnded
from .launch import Ec2Launch


@renderer
def anyones_code(props) -> bool:
    """Whether the build is an upload's or a pull request's: anyone's code."""
    return is_untrusted(props)


@dataclass(frozen=True)
class LaunchedInstance:
    """The instance a worker owns."""

    id: str
    market: str


class FarmEC2LatentWorker(PromptConnectionMixin, NothingStartsForStoppedBuilds,
                          CompatibleLatentWorkerMixin, AbstractLatentWorker):
    """One worker name of an EC2 pool; each substantiation launches a fresh instance.

    ``FarmEC2LatentWorker(name, password, Ec2Launch(...), **latent_worker_options)``:
    the options are Buildbot's (build_wait_timeout, max_builds, properties, ...).

    It keeps Buildbot's latent-worker life cycle
    (substantiate, start_instance, check_instance until the worker connects,
    insubstantiate, stop_instance) and changes what upstream's EC2LatentWorker does
    inside it:

    * nothing talks to AWS while the configuration loads; the AMI is looked up, and
      endpoint, credentials and user-data are rendered, when an instance starts;
    * instance and root volume are tagged at launch (farm, pool, worker, launching
      master, user tags), so that nothing untagged ever exists; the reaper relies on
      these tags;
    * IMDSv2 is required, with a hop limit of 1: only the instance's own processes
      (the boot program, the cache relay) reach it, never a container, and the
      worker container has no network at all (ami/rustfarm-boot); powering off
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
      clear reason when ``spot_fallback='fail'``."""

    # Seconds between DescribeInstances calls while an instance starts (tests lower it).
    poll_interval = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance: LaunchedInstance | None = None
        self._launching = False
        self._launched_at: float | None = None
        self._running_check: task.LoopingCall | None = None
        self._connection: dict | None = None
        self._connector = Ec2Connector()

    # -- configuration ---------------------------------------------------------

    # An instance serves one build unless told to wait for more (build_wait_timeout).
    def checkConfig(self, name, password=None, launch=None, build_wait_timeout=0, **kwargs):
        where = f"FarmEC2LatentWorker {name!r}"
        if isinstance(name, str) and value_problem("name", name):
            config.error(f"{where}: the name {value_problem('name', name)} "
                         "(it travels in the instance's user-data)")
        if not isinstance(launch, Ec2Launch):
            config.error(f"{where}: needs an Ec2Launch (what its instances are)")
        else:
            for problem in launch.problems():
                config.error(f"{where}: {problem}")
        super().checkConfig(name, password, build_wait_timeout=build_wait_timeout, **kwargs)

    def reconfigService(self, name, password=None, launch=None, build_wait_timeout=0, **kwargs):
        self.launch = launch
        # Kept unrendered: start_instance renders it again, so a rotated secret is used.
        self._password_source = password
        if password is None:
            password = self.getRandomPass()
        return super().reconfigService(name, password, build_wait_timeout=build_wait_timeout,
                                       **kwargs)

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
        # An upload's or a pull request's instance reads the compile cache only: what
        # anyone's code compiled is not another build's.
        return build.render((self.launch.image, self.launch.instance_type, anyones_code))

    @defer.inlineCallbacks
    def start_instance(self, build):
        if self.instance is not None:
            raise ValueError("instance active")
        launch = self.launch
        image, instance_type, untrusted = yield self.renderWorkerPropsOnStart(build)
        endpoint_url, key_id, secret_key, token = yield self.renderSecrets(
            launch.endpoint_url, launch.aws_access_key_id, launch.aws_secret_access_key,
            launch.aws_session_token)
        if self._password_source is not None:
            password = yield self.renderSecrets(self._password_source)
            if password != self.password and self.registration is not None:
                # The secret changed since the last (re)configuration: make the
                # master accept the new password before the instance gets it.
                self.password = password
                yield self.registration.update(self, self.master.config)
        try:
            user_data = render_user_data(
                image=image, master=launch.master_host, port=launch.master_port,
                name=self.workername, password=self.password, **launch.user_data_options,
                **({"cache_read_only": True} if untrusted and launch.compile_cache else {}))
        except UserDataError as e:
            raise LatentWorkerCannotSubstantiate(
                f"{self.workername}: cannot write user-data: {e}") from None
        self._connection = {"region": launch.region, "endpoint_url": endpoint_url,
                            "access_key_id": key_id, "secret_access_key": secret_key,
                            "session_token": token}
        self._launching = True
        try:
            yield threads.deferToThread(self._thd_start, launch, instance_type, user_data)
        finally:
            self._launching = False
        if build is not None:
            # The build that substantiated the worker runs on this instance.
            build.setProperty("instance", self.instance.id, "Worker")
        return True

    def _client(self):
        return self._connector.client(**self._connection)

    def _thd_start(self, launch: Ec2Launch, instance_type, user_data):
        from botocore.exceptions import ClientError

        client = self._client()
        image = ec2.find_image(client, launch, self.workername)
        params = ec2.launch_params(launch, self.workername, image, instance_type, user_data,
                                   master=self.master.name)
        if launch.spot:
            try:
                self._thd_launch(client, launch, ec2.with_spot(params, launch.max_spot_price),
                                 image, "Spot")
                return
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code not in SPOT_UNAVAILABLE_CODES:
                    raise
                reason = f"{code}: {e.response['Error'].get('Message', '')}".rstrip(": ")
            except InstanceEnded as e:
                self._thd_forget_instance(client)
                reason = f"Spot instance {e.instance_id} ended before running ({e.reason})"
            if launch.spot_fallback == "fail":
                raise LatentWorkerCannotSubstantiate(
                    f"{self.workername}: no Spot capacity for {instance_type} in "
                    f"{launch.region} ({reason}) and spot_fallback is 'fail'")
            log.msg(f"{self._tag}: no Spot capacity for {instance_type} ({reason}); "
                    "launching an on-demand instance instead")
        try:
            self._thd_launch(client, launch, params, image, "on-demand")
        except InstanceEnded as e:
            raise LatentWorkerFailedToSubstantiate(self.workername, str(e)) from None

    def _thd_launch(self, client, launch: Ec2Launch, params: dict, image: dict,
                    market: str) -> None:
        log.msg(f"{self._tag}: launching {market} {params['InstanceType']} instance from "
                f"{image['ImageId']} ({image.get('Name', 'no name')}) in {launch.region}")
        started = time.monotonic()
        instance_id = ec2.run_instance(client, params)
        # Known from now on: stop_instance() terminates it whatever happens next.
        self.instance = LaunchedInstance(instance_id, market)
        self._launched_at = started
        log.msg(f"{self._tag}: launched {market} instance {instance_id}")
        state = ec2.wait_until_running(client, instance_id, started, launch.connect_timeout,
                                       self.poll_interval, self.workername)
        log.msg(f"{self._tag}: instance {instance_id} is {state} after "
                f"{time.monotonic() - started:.0f}s; waiting for its worker to connect")

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
        timeout = self.launch.connect_timeout
        if waited > timeout:
            return defer.succeed((False, f"the worker on instance {instance.id} did not "
                                         f"connect within {timeout}s"))
        return threads.deferToThread(self._thd_check_instance, instance.id)

    def _thd_check_instance(self, instance_id: str):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            description = ec2.describe(self._client(), instance_id)
        except (BotoCoreError, ClientError) as e:
            # AWS not answering is no proof the instance failed; connect_timeout still applies.
            log.msg(f"{self._tag}: could not check instance {instance_id}: {e}")
            return (True, "")
        why = ec2.ended(description, instance_id)
        return (False, why) if why else (True, "")

    # -- while the worker is connected ---------------------------------------------

    @defer.inlineCallbacks
    def attached(self, conn):
        yield super().attached(conn)
        interval = self.launch.running_check_interval
        if self.instance is not None and self.conn is conn and interval > 0:
            self._stop_running_check()
            self._running_check = task.LoopingCall(self._check_running_instance, conn)
            self._running_check.clock = self.master.reactor
            self._running_check.start(interval, now=False).addErrback(
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
        states = ec2.terminate(client, instance_id)
        if states is None:
            log.msg(f"{self._tag}: instance {instance_id} is already gone")
        else:
            log.msg(f"{self._tag}: terminating instance {instance_id} ({states[0]} -> "
                    f"{states[1]})")

    @property
    def _tag(self) -> str:
        return f"{self.__class__.__name__} {self.workername}"
