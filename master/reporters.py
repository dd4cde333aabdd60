"""What the farm tells the world about a project's builds: commit statuses on its
forge, mail to its owners when it breaks or recovers, and a JSON webhook.

Buildbot's reporters, one set per project (its own token, repository and
recipients), each reporting on that project's builders only:

- statuses: GitHubStatusPush, GitLabStatusPush and buildbot-gitea's
  GiteaStatusPush, context ``rustfarm/<target>``: pending when the build is
  queued (GitLab: running once it starts), then its result, linked to the
  build's page. Statuses are posted to farm.yaml's repository (Buildbot's
  reporters would guess it from the source stamp, which names the farm's
  project and source); the token comes from the secret store
  (`farm forge-token PROJECT`) and is never a property or logged.
- mail: MailNotifier, on a change of result only (Buildbot's mode "change":
  pass to fail, fail to pass, against the builder's last build that was not a
  pull request's), through farm.yaml's notify.smtp relay;
- JSON: HttpStatusPush, each finished build's dictionary, posted to
  notify.webhook.

In a farm of several masters every master's reporters hear of every build (the
router carries each event to all of them), and each would report it: a build is
reported by the master that runs it, a queued request by the active master of the
lowest id, so that each status, mail and post is sent once.
"""

from __future__ import annotations

import copy
from urllib.parse import quote_plus

from buildbot.plugins import reporters, util
from buildbot.process.results import RETRY
from buildbot.reporters.generators.build import BuildStartEndStatusGenerator, BuildStatusGenerator
from buildbot.reporters.generators.buildrequest import BuildRequestGenerator
from buildbot.reporters.message import (MessageFormatter, MessageFormatterFunction,
                                        MessageFormatterRenderable)
from buildbot_gitea.reporter import GiteaStatusPush
from twisted.internet import defer
from twisted.python import log

from rustfarm.farmfile import Farm, Project
from rustfarm.farmfile.forge_settings import forge_token_name
from rustfarm.names import TARGET_PROPERTY, builder_name, reported_pull_request, scheduler_id

STATUS_CONTEXT = util.Interpolate(f"rustfarm/%(prop:{TARGET_PROPERTY})s")


def reported_property(build: dict, name: str, default=None):
    """A property's value in a build as reporters get it (properties: name: [value,
    source])."""
    found = build.get("properties", {}).get(name)
    return found[0] if found else default


@defer.inlineCallbacks
def first_active_master(master):
    """Whether this master is the active master of the lowest id."""
    masters = yield master.data.get(("masters",))
    active = [m["masterid"] for m in masters if m["active"]]
    return not active or min(active) == master.masterid


class ReportedWhereItRuns:
    """For Buildbot's build report generators (before them in the bases): a build is
    reported by the master that runs it."""

    def generate(self, master, reporter, key, build):
        if build.get("masterid") not in (None, master.masterid):
            return defer.succeed(None)
        return super().generate(master, reporter, key, build)


# How far back a report looks for the builder's last build that was not a request's.
PREVIOUS_BUILDS_READ = 50


@defer.inlineCallbacks
def previous_own_build(master, build):
    """The builder's last finished build before ``build`` that was not a pull request's
    (Buildbot's own choice is the one just before, which may be a request's)."""
    for number in range(build["number"] - 1, max(-1, build["number"] - 1 - PREVIOUS_BUILDS_READ),
                        -1):
        before = yield master.data.get(("builders", build["builderid"], "builds", number))
        if not before or before["results"] in (None, RETRY):
            continue
        properties = yield master.data.get(("builds", before["buildid"], "properties"))
        if reported_pull_request(properties or {}) is None:
            return before
    return None


class BuildReport(ReportedWhereItRuns, BuildStatusGenerator):
    """Buildbot's report of a build's end, to the project's people: never a pull
    request's (its author hears of it on the request, through its commit statuses),
    and a change of result is one against the last build that was not a request's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.previous: dict[int, dict | None] = {}

    @defer.inlineCallbacks
    def generate(self, master, reporter, key, build):
        compares = "change" in self.mode or "problem" in self.mode
        if compares and key[2] != "new":
            self.previous[build["buildid"]] = yield previous_own_build(master, build)
        try:
            return (yield super().generate(master, reporter, key, build))
        finally:
            self.previous.pop(build["buildid"], None)

    def is_message_needed_by_props(self, build):
        if reported_pull_request(build["properties"]) is not None:
            return False
        return super().is_message_needed_by_props(build)

    def is_message_needed_by_results(self, build):
        # In place: the message's "the build before" is this one too.
        if build["buildid"] in self.previous:
            build["prev_build"] = self.previous[build["buildid"]]
        return super().is_message_needed_by_results(build)


class BuildStartEndReport(ReportedWhereItRuns, BuildStartEndStatusGenerator):
    """Buildbot's report of a build's start and end."""


class QueuedReport(BuildRequestGenerator):
    """Buildbot's report of a queued build request, sent by one master of the farm
    (asked only of a report this reporter wants: its project's builders)."""

    @defer.inlineCallbacks
    def generate(self, master, reporter, key, buildrequest):
        report = yield super().generate(master, reporter, key, buildrequest)
        if report is None or not (yield first_active_master(master)):
            return None
        return report


def _status_generators(builders: list[str]) -> list:
    return [QueuedReport(builders=builders, formatter=MessageFormatterRenderable("queued")),
            BuildStartEndReport(
                builders=builders,
                start_formatter=MessageFormatterRenderable("building"),
                end_formatter=MessageFormatterRenderable("done"))]


def _reports_naming(reports: list[dict], repository: str, field: str) -> list[dict]:
    """The reports with each source stamp's ``field`` set to the forge's repository
    (a copy: the build's own data is untouched)."""
    reports = copy.deepcopy(reports)
    for report in reports:
        for build in report.get("builds", []):
            for stamp in build.get("buildset", {}).get("sourcestamps", []):
                stamp[field] = repository
    return reports


class GitHubStatuses(reporters.GitHubStatusPush):
    """GitHub's commit statuses, on farm.yaml's repository (owner/name)."""

    def checkConfig(self, repository: str = "", **kwargs):
        super().checkConfig(**kwargs)

    def reconfigService(self, repository: str = "", **kwargs):
        self.repository = repository
        return super().reconfigService(**kwargs)

    def sendMessage(self, reports):
        # Buildbot's reporter takes owner/name from a source stamp's project.
        return super().sendMessage(_reports_naming(reports, self.repository, "project"))


class GitLabStatuses(reporters.GitLabStatusPush):
    """GitLab's commit statuses, on farm.yaml's project path (group/.../name)."""

    def checkConfig(self, repository: str = "", **kwargs):
        super().checkConfig(**kwargs)

    def reconfigService(self, repository: str = "", **kwargs):
        self.repository = repository
        return super().reconfigService(**kwargs)

    @defer.inlineCallbacks
    def getProjectId(self, sourcestamp):
        path = quote_plus(self.repository)
        if path not in self.project_ids:
            response = yield self._http.get(f"/api/v4/projects/{path}")
            found = yield response.json()
            if response.code != 200:
                log.msg(f"GitLab project {self.repository} unknown or hidden: "
                        f"{found.get('message') if isinstance(found, dict) else response.code}")
                return None
            self.project_ids[path] = found["id"]
        return self.project_ids[path]


class GiteaStatuses(GiteaStatusPush):
    """Gitea's commit statuses (buildbot-gitea), on farm.yaml's repository."""

    def checkConfig(self, baseURL, token, repository: str = "", **kwargs):
        super().checkConfig(baseURL, token, **kwargs)

    def reconfigService(self, baseURL, token, repository: str = "", **kwargs):
        self.repository = repository
        return super().reconfigService(baseURL, token, **kwargs)

    def sendMessage(self, reports):
        # The plugin's reporter reads the repository from these two build properties.
        owner, name = self.repository.split("/", 1)
        reports = copy.deepcopy(reports)
        for report in reports:
            for build in report.get("builds", []):
                build["properties"] = {**build.get("properties", {}),
                                       "owner": (owner, "farm.yaml"),
                                       "repository_name": (name, "farm.yaml")}
        return super().sendMessage(reports)


def status_reporter(project: Project):
    forge = project.forge
    builders = [builder_name(project.name, t) for t in project.targets]
    common = {"name": scheduler_id(f"statuses-{project.name}"),
              "repository": forge.repository,
              "context": STATUS_CONTEXT,
              "generators": _status_generators(builders)}
    return on_forge(project, {"github": GitHubStatuses, "gitlab": GitLabStatuses,
                              "gitea": GiteaStatuses}, **common)


def on_forge(project: Project, classes: dict, **common):
    """The project's forge's reporter of ``classes``, with its API's address and token
    (buildbot-gitea's takes them by position)."""
    forge, token = project.forge, util.Secret(forge_token_name(project.name))
    if forge.kind == "gitea":
        return classes["gitea"](forge.api_url, token, **common)
    return classes[forge.kind](token=token, baseURL=forge.api_url, **common)


MAIL_SUBJECT = ("{{ buildername }}: {{ 'passes again' if results == 0 else "
                "'broken (' ~ result_names[results] ~ ')' }}")
MAIL_TEMPLATE = """\
{{ buildername }}: {{ summary }}
(the build before was {{ result_names[previous_results] }})

Build: {{ build_url }}
Revision: {{ build['properties'].get('got_revision', ['unknown'])[0] }}
"""


def build_as_json(context: dict) -> dict:
    """The JSON webhook's body: the build as Buildbot's REST API gives it."""
    return context["build"]


def notifiers(farm: Farm, project: Project) -> list:
    builders = [builder_name(project.name, t) for t in project.targets]
    found = []
    if project.notify.email:
        found.append(reporters.MailNotifier(
            name=scheduler_id(f"mail-{project.name}"),
            fromaddr=farm.notify.sender or f"rustfarm@{farm.farm.name}.invalid",
            relayhost=farm.notify.smtp_host,
            smtpPort=farm.notify.smtp_port,
            sendToInterestedUsers=False,
            extraRecipients=list(project.notify.email),
            generators=[BuildReport(
                mode=("change",), builders=builders,
                message_formatter=MessageFormatter(
                    template=MAIL_TEMPLATE, template_type="plain", subject=MAIL_SUBJECT))]))
    if project.notify.webhook:
        found.append(reporters.HttpStatusPush(
            name=scheduler_id(f"webhook-{project.name}"),
            serverUrl=project.notify.webhook,
            generators=[BuildReport(
                mode="all", builders=builders,
                message_formatter=MessageFormatterFunction(build_as_json, "json"))]))
    return found


def project_reporters(farm: Farm) -> list:
    found = []
    for project in farm.projects.values():
        if project.forge and project.forge.statuses:
            found.append(status_reporter(project))
        found.extend(notifiers(farm, project))
    return found
