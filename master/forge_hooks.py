"""Pushes from GitHub, GitLab and Gitea, at Buildbot's change hooks (/change_hook/<kind>).

Each project of farm.yaml with a ``forge`` has its own webhook secret in the secret
store (`farm webhook-secret PROJECT`). Several projects may live on one forge, so
a request is checked with the secret of the project its payload's repository
names (of each such project: one repository may be built as several projects).
A request without a signature is answered 401, one with a wrong signature or for
a repository no project has 403; the master's log says so, without the payload.

Buildbot's handlers turn a verified push into changes; here each change is given
the farm project's name (its schedulers filter on it) and source. A pull (merge)
request's event becomes a change of its head where the project builds it, or, as it
closes, removes its artifacts (master/pull_requests.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from buildbot.plugins import util
from buildbot.process.properties import Properties
from buildbot.util import bytes2unicode, unicode2bytes
from buildbot.www.change_hook import ChangeHookResource
from buildbot.www.hooks.base import BaseHookHandler
from buildbot.www.hooks.github import GitHubEventHandler
from buildbot.www.service import WWWService
from buildbot_gitea.webhook import GiteaHandler
from twisted.internet import defer, threads
from twisted.python import log
from twisted.web import server

from rustfarm.farmfile import Farm
from rustfarm.farmfile.forge_settings import PullRequests, webhook_secret_name
from rustfarm.names import PULL_REQUEST_DIR
from rustfarm.state import StateDir
from rustfarm.workers.buildbot_private import forget_hook_handlers, gitlab_push_changes

from .pull_requests import github_pull_request, gitlab_merge_request


@dataclass(frozen=True)
class HookedProject:
    """A farm project as its forge's webhooks reach it."""

    name: str
    source: str           # what the project's builds fetch (farm.yaml's source)
    secret: str           # the secret store's name of its webhook secret
    pull_requests: PullRequests | None = None     # which requests it builds (None: none)


class WebhookRefused(ValueError):
    """A request the hook does not take: its HTTP status and why (no payload)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def hook_dialects(farm: Farm, paths: StateDir) -> dict:
    """www's change_hook_dialects: one per forge kind the farm's projects use."""
    from .artifact_places import ArtifactPlaces
    places = ArtifactPlaces(farm.artifacts, paths)
    dialects: dict[str, dict] = {}
    for project in farm.projects.values():
        if project.forge is None:
            continue
        kind = project.forge.kind
        dialect = dialects.setdefault(kind, {"custom_class": HANDLERS[kind], "repositories": {},
                                             "artifact_places": places})
        dialect["repositories"].setdefault(project.forge.repository.lower(), []).append(
            HookedProject(project.name, project.source, webhook_secret_name(project.name),
                          project.forge.pull_requests))
    return dialects


class ForgeHook(BaseHookHandler):
    """One forge's webhooks: which repository a payload names, how it is signed, and
    the changes it brings (each forge's subclass)."""

    kind = ""

    def __init__(self, master, options):
        super().__init__(master, options)
        self.repositories: dict[str, list[HookedProject]] = options.get("repositories", {})
        # Where builds write and releases are kept: a closed request's files go from both.
        self.places = options.get("artifact_places")

    @defer.inlineCallbacks
    def getChanges(self, request):
        body = request.content.read()
        event = bytes2unicode(request.getHeader(self.event_header) or b"")
        try:
            payload = json.loads(body)
            repository = self.repository_of(payload)
            pull = self.pull_request(payload, event)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WebhookRefused(400, f"not a {self.kind} webhook payload (JSON naming its "
                                      "repository)") from None
        projects = self.repositories.get(str(repository).lower(), [])
        if not projects:
            raise WebhookRefused(403, f"no project of this farm has {self.kind} repository "
                                      f"{repository}")
        signature = self.signature(request)
        if not signature:
            raise WebhookRefused(401, f"a push for {repository} without a signature "
                                      f"({self.signature_header})")
        signed = []
        for project in projects:
            secret = yield self.secret(project)
            if secret and self.signed_with(secret, body, signature):
                signed.append(project)
        if not signed:
            raise WebhookRefused(403, f"a push for {repository} with a wrong signature "
                                      f"(projects: {', '.join(p.name for p in projects)})")
        if pull is not None:
            changes = yield self.pull_request_changes(pull, signed, event, repository)
            return changes, "git"
        found = yield self.changes(payload, event)
        changes = []
        for project in signed:
            for change in found:
                changes.append({**change, "project": project.name,
                                "repository": project.source,
                                "properties": {**change.get("properties", {}),
                                               "forge_event": event}})
        log.msg(f"change hook {self.kind}: {event or 'event'} for {repository}: "
                f"{len(found)} change(s) for {', '.join(p.name for p in signed)}")
        return changes, "git"

    @defer.inlineCallbacks
    def pull_request_changes(self, pull, projects: list[HookedProject], event: str,
                             repository: str):
        changes = []
        for project in projects:
            settings = project.pull_requests
            if settings is None:
                continue
            if pull.closes:
                gone = f"{project.name}/{PULL_REQUEST_DIR.format(number=pull.number)}"
                yield threads.deferToThread(self.places.remove, gone)
                log.msg(f"change hook {self.kind}: request {pull.number} of {repository} "
                        f"closed; its artifacts of {project.name} are removed")
            elif pull.builds(settings):
                change = pull.change()
                changes.append({**change, "project": project.name,
                                "repository": project.source,
                                "properties": {**change["properties"], "forge_event": event}})
            else:
                log.msg(f"change hook {self.kind}: request {pull.number} of {repository} "
                        f"({'from a fork' if pull.from_fork else 'its own'}, by {pull.author})"
                        f" is not built for {project.name}: "
                        + ("it needs the label "
                           f"'{settings.label}'" if pull.from_fork else "nothing new to build"))
        log.msg(f"change hook {self.kind}: {event} {pull.number} for {repository}: "
                f"{len(changes)} change(s)")
        return changes

    @defer.inlineCallbacks
    def secret(self, project: HookedProject):
        props = Properties()
        props.master = self.master
        try:
            value = yield props.render(util.Secret(project.secret))
        except Exception:           # never made: `farm webhook-secret` makes it
            log.msg(f"change hook {self.kind}: project {project.name} has no webhook secret "
                    f"yet (farm webhook-secret {project.name})")
            return None
        return value

    def signature(self, request) -> str:
        return bytes2unicode(request.getHeader(self.signature_header) or b"").strip()

    # What each forge's subclass says.
    signature_header = b""
    event_header = b""

    def repository_of(self, payload: dict) -> str:
        raise NotImplementedError

    def signed_with(self, secret: str, body: bytes, signature: str) -> bool:
        raise NotImplementedError

    def changes(self, payload: dict, event: str):
        raise NotImplementedError

    def pull_request(self, payload: dict, event: str):
        """The pull request event the payload is, or None (a push, a ping, ...)."""
        return github_pull_request(payload, event)


def hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(unicode2bytes(secret), body, hashlib.sha256).hexdigest()


class GitHubHook(ForgeHook):
    """GitHub: X-Hub-Signature-256 is ``sha256=`` and the body's HMAC-SHA256."""

    kind = "github"
    signature_header = b"X-Hub-Signature-256"
    event_header = b"X-GitHub-Event"

    def __init__(self, master, options):
        super().__init__(master, options)
        self.events = GitHubEventHandler(None, False, master=master)

    def repository_of(self, payload: dict) -> str:
        return payload["repository"]["full_name"]

    def signed_with(self, secret: str, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(f"sha256={hmac_sha256(secret, body)}", signature)

    def changes(self, payload: dict, event: str):
        if event != "push":         # ping, ...
            return defer.succeed([])
        changes, _ = self.events.handle_push(payload, event)
        return defer.succeed(changes)


class GitLabHook(ForgeHook):
    """GitLab: X-Gitlab-Token is the secret itself."""

    kind = "gitlab"
    signature_header = b"X-Gitlab-Token"
    event_header = b"X-Gitlab-Event"

    def repository_of(self, payload: dict) -> str:
        return payload["project"]["path_with_namespace"]

    def signed_with(self, secret: str, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(unicode2bytes(secret), unicode2bytes(signature))

    def changes(self, payload: dict, event: str):
        if payload.get("object_kind") != "push":
            return defer.succeed([])
        return defer.succeed(gitlab_push_changes(self.master, payload))

    def pull_request(self, payload: dict, event: str):
        return gitlab_merge_request(payload, event)


class GiteaHook(ForgeHook):
    """Gitea (buildbot-gitea's handler): X-Gitea-Signature is the body's HMAC-SHA256."""

    kind = "gitea"
    signature_header = b"X-Gitea-Signature"
    event_header = b"X-Gitea-Event"

    def __init__(self, master, options):
        super().__init__(master, options)
        self.events = GiteaHandler(master, {})

    def repository_of(self, payload: dict) -> str:
        return payload["repository"]["full_name"]

    def signed_with(self, secret: str, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(hmac_sha256(secret, body), signature)

    def changes(self, payload: dict, event: str):
        if event != "push":
            return defer.succeed([])
        return defer.succeed(self.events.process_push(payload, event, None))


HANDLERS = {"github": GitHubHook, "gitlab": GitLabHook, "gitea": GiteaHook}


class ForgeChangeHooks(ChangeHookResource):
    """Buildbot's /change_hook, answering a refused webhook with its own status (401,
    403) rather than 400, and taking farm.yaml's projects anew at each reload."""

    # Made after Buildbot's site: FarmWWWService passes it each configuration.
    needsReconfig = False

    def reconfigResource(self, new_config) -> None:
        super().reconfigResource(new_config)
        forget_hook_handlers(self)

    def render_POST(self, request: server.Request):
        d = self.getAndSubmitChanges(request)

        def accepted(_):
            # Buildbot's hook has written "N change found" already: 200 is sent.
            request.finish()

        def refused(why):
            if why.check(WebhookRefused):
                code, message = why.value.status, why.value.reason
                peer = request.getClientAddress()
                log.msg(f"change hook: refused {bytes2unicode(request.uri)} from "
                        f"{getattr(peer, 'host', peer)}: {code} {message}")
            elif why.check(ValueError):
                code, message = 400, why.getErrorMessage()
            else:
                log.err(why, "adding changes from web hook")
                code, message = 500, "Error processing changes."
            request.setResponseCode(code, unicode2bytes(message))
            request.write(unicode2bytes(message))
            request.finish()

        d.addCallbacks(accepted, refused)
        return server.NOT_DONE_YET


class FarmWWWService(WWWService):
    """Buildbot's web server, with the farm's /change_hook."""

    change_hooks: ForgeChangeHooks | None = None

    def setupSite(self, new_config) -> None:
        super().setupSite(new_config)
        self.change_hooks = ForgeChangeHooks(master=self.master)
        self.root.putChild(b"change_hook", self.change_hooks)

    def reconfigSite(self, new_config) -> None:
        super().reconfigSite(new_config)
        if self.change_hooks is not None:
            self.change_hooks.reconfigResource(new_config)
