"""Every place the farm reaches into Buildbot's private methods and attributes, in one
module: each is overridden or used here once, behind a public name the farm's classes
use instead. UPSTREAM says what each was written against (Buildbot 4.3.0); the test
tests/workers/test_buildbot_private.py fails, naming the one that changed, when an
upgrade changes any of them.
"""

from __future__ import annotations

from buildbot.db.buildrequests import BuildRequestsConnectorComponent
from buildbot.process.botmaster import BotMaster
from buildbot.process.build import Build
from buildbot.process.builder import Builder
from buildbot.util import debounce
from buildbot.util.httpclientservice import HTTPClientService, HTTPSession
from buildbot.util.latent import CompatibleLatentWorkerMixin
from buildbot.worker.docker import DockerLatentWorker
from buildbot.worker.latent import AbstractLatentWorker
from buildbot.www.change_hook import ChangeHookResource
from buildbot.www.hooks.gitlab import GitLabHandler

# (class, name): the signature upstream has, or "attribute" for a private attribute.
UPSTREAM = {
    (DockerLatentWorker, "_getDockerClient"): "(self, client_args)",
    (DockerLatentWorker, "_image_exists"): "(self, client, name)",
    (DockerLatentWorker, "_thd_start_instance"):
        "(self, docker_host, image, dockerfile, volumes, host_config, custom_context, "
        "encoding, target, buildargs, hostname)",
    (AbstractLatentWorker, "_clearBuildWaitTimer"): "(self)",
    (AbstractLatentWorker, "_soft_disconnect"): "(self, fast=False, stopping_service=False)",
    (AbstractLatentWorker, "_deferwaiter"): "attribute",
    (CompatibleLatentWorkerMixin, "_actual_build_props"): "attribute",
    (Build, "_preparation_step"): "attribute",
    (BotMaster, "_flush_pending_builders"): "(self)",
    (BotMaster, "_buildrequest_added"): "(self, key, msg)",
    (BotMaster, "_builders_byid"): "attribute",
    (Builder, "_find_builder_config_by_name"):
        "(self, new_config: 'MasterConfig') -> 'BuilderConfig | None'",
    (Builder, "_builderid"): "attribute",
    (GitLabHandler, "_process_change"):
        "(self, payload: 'dict[str, Any]', user: 'str', repo: 'str', repo_url: 'str', "
        "event: 'str', codebase: 'str | None' = None) -> 'list[dict[str, Any]]'",
    (ChangeHookResource, "_dialect_handlers"): "attribute",
    (BuildRequestsConnectorComponent, "_unclaim_buildrequests_for_master"):
        "(self, brids, masterid)",
    (HTTPClientService, "_do_request"): "(self, session, method, ep, **kwargs)",
}


class DockerWorkerPrivates(DockerLatentWorker):
    """DockerLatentWorker's private steps of a container's start, as hooks:
    ``engine_client(args)`` makes the engine's API client, ``image_on_engine(client,
    name)`` says whether the image is there, ``thd_start_container(...)`` starts the
    container (in a thread), calling ``upstream_start_container`` to do it as upstream
    does."""

    def _getDockerClient(self, client_args):
        return self.engine_client(client_args)

    def _image_exists(self, client, name):
        return self.image_on_engine(client, name)

    def _thd_start_instance(self, docker_host, image, *args):
        return self.thd_start_container(docker_host, image, *args)

    def engine_client(self, client_args):
        return super()._getDockerClient(client_args)

    def image_on_engine(self, client, name) -> bool:
        return DockerLatentWorker._image_exists(self, client, name)

    def thd_start_container(self, docker_host, image, *args):
        return self.upstream_start_container(docker_host, image, *args)

    def upstream_start_container(self, docker_host, image, *args):
        return DockerLatentWorker._thd_start_instance(self, docker_host, image, *args)


class LatentWorkerPrivates:
    """A latent worker's private timer, disconnection and rendered properties, for a
    mixin before Buildbot's latent worker classes."""

    def clear_build_wait_timer(self) -> None:
        self._clearBuildWaitTimer()

    def disconnect_soon(self) -> None:
        """Disconnect (and so stop the instance) without waiting for it here."""
        self._deferwaiter.add(self._soft_disconnect())

    @property
    def rendered_worker_props(self):
        """The worker properties Buildbot rendered for the instance running now."""
        return getattr(self, "_actual_build_props", None)

    @rendered_worker_props.setter
    def rendered_worker_props(self, props) -> None:
        self._actual_build_props = props


class BuildPrivates(Build):
    """Build's private preparation step, as a public question."""

    @property
    def preparation_started(self) -> bool:
        """Whether the build got as far as preparing its worker (its first step)."""
        return self._preparation_step is not None


def gathered_flush(wait: float):
    """A debounced copy of BotMaster's own flush of the builders that requests arrived
    for, gathering requests for ``wait`` seconds (Buildbot's gathers for 0.1 s)."""
    def flush_gathered(self):      # its name keeps its state apart from Buildbot's
        return BotMaster.__dict__["_flush_pending_builders"].fn(self)

    return debounce.method(wait=wait, until_idle=True)(flush_gathered)


class BotMasterPrivates(BotMaster):
    """BotMaster's private request handling, as hooks: ``gathering()`` chooses the
    debounced flush a new request triggers (``buildbot_gathering`` is Buildbot's own),
    ``request_added(key, msg)`` hears of each request first; ``set_builders_by_id``
    records the builders' ids."""

    buildbot_gathering = BotMaster.__dict__["_flush_pending_builders"]

    @property
    def _flush_pending_builders(self):
        return self.gathering()

    def gathering(self):
        return self.buildbot_gathering

    def _buildrequest_added(self, key, msg):
        self.request_added(key, msg)
        super()._buildrequest_added(key, msg)

    def request_added(self, key, msg) -> None:
        pass

    def set_builders_by_id(self, by_id: dict) -> None:
        self._builders_byid = by_id


class BuilderPrivates(Builder):
    """Builder's private id and configuration lookup, as public names."""

    def know_builder_id(self, builderid: int) -> None:
        self._builderid = builderid

    @property
    def builder_id_known(self) -> int | None:
        """Its id, once known (getBuilderId asks the database otherwise)."""
        return self._builderid

    def builder_config_named(self, new_config):
        return self._find_builder_config_by_name(new_config)


def gitlab_push_changes(master, payload: dict) -> list[dict]:
    """The changes of a verified GitLab push payload, as Buildbot's GitLab hook makes
    them (its push parsing has no public name)."""
    handler = GitLabHandler(master, {})
    return handler._process_change(payload, payload["user_name"], payload["repository"]["name"],
                                   payload["repository"]["url"], "push")


def release_claims_of(db, brids: list[int], masterid: int):
    """Unclaim build requests as master ``masterid`` (Buildbot's public unclaim acts as
    the calling master, which leaves another master's claims in place)."""
    return db.buildrequests._unclaim_buildrequests_for_master(brids, masterid)


def forget_hook_handlers(resource: ChangeHookResource) -> None:
    """Drop the change hook's handlers made for the last configuration (Buildbot keeps
    them across reconfigurations, with the dialects' old options)."""
    resource._dialect_handlers = {}


def http_patch(session: HTTPSession, ep: str, **kwargs):
    """A PATCH request through one of Buildbot's HTTP sessions, as its get and post are
    made (HTTPSession has no patch)."""
    return session.http._do_request(session, "patch", ep, **kwargs)
