"""GitHub check runs, one per target on the build's commit, made as the GitHub App that
farm.yaml's forge.checks names.

One check run, named like the commit status (``rustfarm/<target>``), follows each
build request: it is made queued and then updated (PATCH) to in_progress and to
completed with its conclusion and an output (the build's link; for a failure the
failed step and its first error). The run's id is found again by its external_id
(the build request's id) on the commit, so the master that runs a build updates the
run another master made when it queued it. The reports are those of the statuses'
generators, so each is sent once in a farm of several masters.

The App authenticates with a JWT signed by its private key (`farm github-app-key`, read
from the secret store when a token is needed, never a property or logged), exchanged
for an installation token that is kept until shortly before it expires.
"""

from __future__ import annotations

import datetime
import time

import jwt
from buildbot.plugins import util
from buildbot.process.properties import Properties
from buildbot.process.results import (CANCELLED, EXCEPTION, FAILURE, RETRY, SKIPPED, SUCCESS,
                                      WARNINGS, statusToString)
from buildbot.reporters.base import ReporterBase
from buildbot.reporters.message import MessageFormatterFunction, MessageFormatterRenderable
from buildbot.util import httpclientservice
from twisted.internet import defer
from twisted.python import log

from rustfarm.farmfile import Project
from rustfarm.farmfile.forge_settings import github_app_key_name
from rustfarm.names import builder_name, scheduler_id
from rustfarm.workers.buildbot_private import http_patch

from .cargo_steps import FIRST_ERROR_PROPERTY
from .reporters import STATUS_CONTEXT, BuildStartEndReport, QueuedReport, reported_property

CONCLUSIONS = {SUCCESS: "success", WARNINGS: "success", FAILURE: "failure",
               SKIPPED: "skipped", EXCEPTION: "failure", CANCELLED: "cancelled"}
# GitHub accepts a JWT for at most 10 minutes; its clock may be a little behind ours.
JWT_LIFETIME = 540
CLOCK_SKEW = 60
# An installation token lasts an hour; one this close to its end is renewed.
TOKEN_MARGIN = 300
# Check-run ids this master knows, newest last; older ones are looked up again.
KNOWN_RUNS = 512
HEADERS = {"User-Agent": "rustfarm", "Accept": "application/vnd.github+json",
           "X-GitHub-Api-Version": "2022-11-28"}


def app_jwt(app_id: int, private_key: str, now: float) -> str:
    """The App's JSON Web Token, as GitHub asks for it (RS256, issued by the App's id)."""
    claims = {"iat": int(now) - CLOCK_SKEW, "exp": int(now) + JWT_LIFETIME, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm="RS256")


def _timestamp(when) -> str | None:
    if not isinstance(when, datetime.datetime):
        return None
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed_step(build: dict) -> dict | None:
    """The build's first step that failed (or broke), if the report has its steps."""
    return next((s for s in build.get("steps") or []
                 if s.get("results") in (FAILURE, EXCEPTION)), None)


def _waiting_fields(build: dict, link: str) -> dict:
    """A request waiting for a worker (a build retried waits again), or cancelled."""
    if build.get("results") == CANCELLED:
        return {"status": "completed", "conclusion": "cancelled",
                "output": {"title": "cancelled", "summary": f"Cancelled before it ran: {link}"}}
    return {"status": "queued", "output": {"title": "queued",
                                           "summary": f"Waiting for a worker: {link}"}}


def check_run_fields(build: dict) -> dict:
    """What a check run says of ``build`` at this event: its status, conclusion, times
    and output."""
    link = f"[{build.get('builder', {}).get('name', 'the build')}]({build.get('url', '')})"
    if "buildid" not in build or build.get("results") == RETRY:
        return _waiting_fields(build, link)
    fields = {"status": "in_progress", "started_at": _timestamp(build.get("started_at")),
              "output": {"title": "building", "summary": f"Building: {link}"}}
    if build.get("complete"):
        results = build["results"]
        summary = [f"{statusToString(results)}: {link}"]
        step = failed_step(build)
        if step is not None:
            summary.append(f"Failed step: `{step['name']}` ({step.get('state_string', '')})")
        error = reported_property(build, FIRST_ERROR_PROPERTY)
        if error and results != SUCCESS:
            summary += ["First error:", f"```\n{error}\n```"]
        fields.update(status="completed", conclusion=CONCLUSIONS.get(results, "failure"),
                      completed_at=_timestamp(build.get("complete_at")),
                      output={"title": build.get("state_string") or statusToString(results),
                              "summary": "\n\n".join(summary)})
    return {k: v for k, v in fields.items() if v is not None}


def _end_message(context: dict) -> str:
    return "done"


def check_run_generators(builders: list[str]) -> list:
    """The statuses' generators; a build's end brings its steps, for the failed one."""
    return [QueuedReport(builders=builders, formatter=MessageFormatterRenderable("queued")),
            BuildStartEndReport(
                builders=builders,
                start_formatter=MessageFormatterRenderable("building"),
                end_formatter=MessageFormatterFunction(_end_message, "plain", want_steps=True))]


class GitHubCheckRuns(ReporterBase):
    """Check runs on farm.yaml's repository, made as its GitHub App."""

    def checkConfig(self, repository: str, app_id: int, key_secret: str,
                    installation_id: int = 0, baseURL: str = "https://api.github.com",
                    context=STATUS_CONTEXT, generators=None, **kwargs):
        super().checkConfig(generators=generators, **kwargs)

    @defer.inlineCallbacks
    def reconfigService(self, repository: str, app_id: int, key_secret: str,
                        installation_id: int = 0, baseURL: str = "https://api.github.com",
                        context=STATUS_CONTEXT, generators=None, **kwargs):
        self.repository, self.app_id, self.key_secret = repository, app_id, key_secret
        self.installation_id = installation_id
        self.context = context
        self.token: tuple[str, float] | None = None     # (token, when it expires)
        self.run_ids: dict[tuple[str, str, str], int] = {}   # (sha, name, external_id)
        # One event's calls at a time, so an update never overtakes the run's making.
        self.lock = defer.DeferredLock()
        yield super().reconfigService(generators=generators, **kwargs)
        self._http = yield httpclientservice.HTTPSession(
            self.master.httpservice, baseURL.rstrip("/"), headers=HEADERS)

    @defer.inlineCallbacks
    def _signed(self) -> defer.Deferred:
        """The Authorization header of a request made as the App itself."""
        props = Properties()
        props.master = self.master
        key = yield props.render(util.Secret(self.key_secret))
        return {"Authorization": f"Bearer {app_jwt(self.app_id, key, time.time())}"}

    @defer.inlineCallbacks
    def _installation(self) -> defer.Deferred:
        if not self.installation_id:
            response = yield self._http.get(f"/repos/{self.repository}/installation",
                                            headers=(yield self._signed()))
            if response.code != 200:
                raise RuntimeError(f"GitHub App {self.app_id} is not installed on "
                                   f"{self.repository} (HTTP {response.code})")
            self.installation_id = (yield response.json())["id"]
        return self.installation_id

    @defer.inlineCallbacks
    def _installation_token(self) -> defer.Deferred:
        """The installation's token, kept until shortly before it expires."""
        if self.token is None or self.token[1] - TOKEN_MARGIN < time.time():
            installation = yield self._installation()
            response = yield self._http.post(
                f"/app/installations/{installation}/access_tokens",
                headers=(yield self._signed()))
            if response.code != 201:
                raise RuntimeError(f"GitHub gave App {self.app_id} no token for installation "
                                   f"{installation} (HTTP {response.code})")
            found = yield response.json()
            expires = datetime.datetime.fromisoformat(found["expires_at"]).timestamp()
            self.token = (found["token"], expires)
        return self.token[0]

    @defer.inlineCallbacks
    def _run_id(self, sha: str, name: str, external_id: str, auth: dict) -> defer.Deferred:
        """The id of the request's check run on the commit, if one was made."""
        key = (sha, name, external_id)
        if key not in self.run_ids:
            response = yield self._http.get(
                f"/repos/{self.repository}/commits/{sha}/check-runs",
                params={"check_name": name, "filter": "all", "per_page": "100"}, headers=auth)
            if response.code != 200:
                raise RuntimeError(f"no check runs listed (HTTP {response.code})")
            found = yield response.json()
            ids = [run["id"] for run in found.get("check_runs") or []
                   if run.get("external_id") == external_id]
            if not ids:
                return None
            self._remember(key, max(ids))
        return self.run_ids[key]

    def _remember(self, key: tuple[str, str, str], run_id: int) -> None:
        self.run_ids.pop(key, None)
        self.run_ids[key] = run_id
        while len(self.run_ids) > KNOWN_RUNS:
            del self.run_ids[next(iter(self.run_ids))]

    @defer.inlineCallbacks
    def _send(self, sha: str, body: dict) -> defer.Deferred:
        """Make the request's check run on ``sha``, or update the one made before."""
        token = yield self._installation_token()
        auth = {"Authorization": f"Bearer {token}"}
        key = (sha, body["name"], body["external_id"])
        run_id = yield self._run_id(*key, auth)
        if run_id is None:
            response = yield self._http.post(f"/repos/{self.repository}/check-runs",
                                             json={"head_sha": sha, **body}, headers=auth)
        else:
            response = yield http_patch(self._http, f"/repos/{self.repository}/check-runs/"
                                        f"{run_id}", json=body, headers=auth)
        if response.code == 401:
            self.token = None     # revoked (the App uninstalled?): a new one next
        if response.code // 100 != 2:
            content = yield response.content()
            raise RuntimeError(f"HTTP {response.code}: {content[:200]!r}")
        if run_id is None:
            self._remember(key, (yield response.json())["id"])

    @defer.inlineCallbacks
    def sendMessage(self, reports):
        build = reports[0]["builds"][0]
        props = Properties.fromDict(build["properties"])
        props.master = self.master
        name = yield props.render(self.context)
        fields = check_run_fields(build)
        for stamp in build["buildset"].get("sourcestamps") or []:
            if not stamp.get("revision"):
                continue      # forced without a revision: no commit to mark
            body = {"name": name, "details_url": build["url"],
                    "external_id": str(build.get("buildrequestid")
                                       or build["buildrequest"]["buildrequestid"]),
                    **fields}
            try:
                yield self.lock.run(self._send, stamp["revision"], body)
            except Exception as err:
                log.msg(f"{self.name}: no check run {fields['status']} for {name} at "
                        f"{stamp['revision'][:12]} on {self.repository}: {err}")


def check_run_reporter(project: Project):
    """The project's check-run reporter, if its forge has check runs."""
    forge = project.forge
    if forge is None or forge.kind != "github" or forge.checks is None:
        return None
    return GitHubCheckRuns(
        name=scheduler_id(f"checks-{project.name}"), repository=forge.repository,
        app_id=forge.checks.app_id, installation_id=forge.checks.installation_id,
        key_secret=github_app_key_name(project.name), baseURL=forge.api_url,
        generators=check_run_generators([builder_name(project.name, t)
                                         for t in project.targets]))


def check_run_reporters(farm) -> list:
    found = (check_run_reporter(project) for project in farm.projects.values())
    return [reporter for reporter in found if reporter is not None]
