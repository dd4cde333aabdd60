"""One comment per push to a pull (merge) request: once all its targets' builds ended,
which failed and each one's first error, on the request itself.

Buildbot's reporters post them: GitHub's comment reporter (the request's number from
the build's branch, ``refs/pull/N/head``), GitLab's status reporter made to post a
note on the merge request (``refs/merge-requests/N/head``), the buildbot-gitea status
reporter made to post an issue comment. Its report is Buildbot's of a whole buildset
(the builds one push of the request started), sent by one master of the farm.
"""

from __future__ import annotations

import copy
import re

from buildbot.plugins import reporters
from buildbot.reporters.generators.buildset import BuildSetCombinedStatusGenerator
from buildbot.reporters.message import MessageFormatterFunction
from buildbot.process.results import SUCCESS, statusToString
from twisted.internet import defer
from twisted.python import log

from rustfarm.farmfile import Project
from rustfarm.names import TARGET_PROPERTY, reported_pull_request, scheduler_id

from .cargo_steps import FIRST_ERROR_PROPERTY
from .pull_requests import pull_request_builders
from .reporters import (GiteaStatuses, GitHubStatuses, GitLabStatuses, first_active_master,
                        on_forge, reported_property)


def summary(context: dict) -> str:
    """The comment: a line per target, the failed ones' first errors under them."""
    builds = sorted(context["builds"], key=lambda b: reported_property(b, TARGET_PROPERTY, ""))
    failed = [b for b in builds if b["results"] != SUCCESS]
    revision = reported_property(builds[0], "got_revision", "") if builds else ""
    head = (f"rustfarm: {len(failed)} of {len(builds)} targets failed" if failed
            else f"rustfarm: all {len(builds)} targets built")
    lines = [f"{head} for {revision[:12]}", ""]
    for build in builds:
        result = statusToString(build["results"])
        lines.append(f"- `{reported_property(build, TARGET_PROPERTY, '?')}`: {result} "
                     f"({build.get('state_string', '')}) {build.get('url', '')}".rstrip())
    for build in failed:
        error = reported_property(build, FIRST_ERROR_PROPERTY)
        if error:
            lines += ["", f"`{reported_property(build, TARGET_PROPERTY, '?')}`, its first error:",
                      "```", error, "```"]
    return "\n".join(lines) + "\n"


class PullRequestSummary(BuildSetCombinedStatusGenerator):
    """Buildbot's report of a whole buildset, for one project's pull requests' builds
    only, and by the active master of the lowest id."""

    def __init__(self, builders: list[str]):
        super().__init__(MessageFormatterFunction(summary, "plain", want_properties=True))
        self.builders = frozenset(builders)

    @defer.inlineCallbacks
    def generate(self, master, reporter, key, message):
        report = yield super().generate(master, reporter, key, message)
        builds = (report or {}).get("builds") or []
        if not builds or not all(b["builder"]["name"] in self.builders for b in builds):
            return None
        if reported_pull_request(builds[0].get("properties", {})) is None:
            return None
        if not (yield first_active_master(master)):
            return None
        return report


class GitLabNotes(GitLabStatuses):
    """The summary as a note on the merge request its build's branch names."""

    @defer.inlineCallbacks
    def createStatus(self, project_id, branch, sha, state, target_url=None, description=None,
                     context=None):
        number = re.fullmatch(r"refs/merge-requests/(\d+)/head", branch or "")
        if number is None:
            log.msg(f"{self.name}: no merge request in branch {branch!r}; no note")
            return None
        response = yield self._http.post(
            f"/api/v4/projects/{project_id}/merge_requests/{number.group(1)}/notes",
            json={"body": description})
        return response


class GiteaComments(GiteaStatuses):
    """The summary as a comment on the pull request (Gitea's issue comments)."""

    def sendMessage(self, reports):
        # The plugin's reporter hands createStatus a source stamp's revision: here, the
        # request's number, the comment's address.
        reports = copy.deepcopy(reports)
        for report in reports:
            for build in report.get("builds", []):
                number = reported_pull_request(build.get("properties", {}))
                for stamp in build.get("buildset", {}).get("sourcestamps", []):
                    stamp["revision"] = str(number)
        return super().sendMessage(reports)

    def createStatus(self, project_owner, repo_name, sha, state, target_url=None,
                     description=None, context=None):
        return self._http.post(
            f"/api/v1/repos/{project_owner}/{repo_name}/issues/{sha}/comments",
            json={"body": description})


class CommentsOnGitHub(GitHubStatuses, reporters.GitHubCommentPush):
    """Buildbot's GitHub comment reporter, on farm.yaml's repository."""


def comment_reporter(farm, project: Project):
    """The reporter of a project's requests' summary comments, where it has them."""
    forge = project.forge
    settings = forge.pull_requests if forge else None
    builders = pull_request_builders(farm, project) if settings else []
    if not settings or not settings.comment or not builders:
        return None
    common = {"name": scheduler_id(f"comments-{project.name}"),
              "repository": forge.repository,
              "generators": [PullRequestSummary(builders)]}
    return on_forge(project, {"github": CommentsOnGitHub, "gitlab": GitLabNotes,
                              "gitea": GiteaComments}, **common)


def comment_reporters(farm) -> list:
    found = (comment_reporter(farm, project) for project in farm.projects.values())
    return [reporter for reporter in found if reporter is not None]
