"""Pull requests (GitLab: merge requests) from the forges' webhooks, and their builds.

A request from the repository itself is built as it opens and at each push to it; one
from a fork once a maintainer adds farm.yaml's label, or at once when its author is
allowed (rustfarm/farmfile/forge_settings.py). Its head is fetched from the ref the
forge keeps it under (``refs/pull/N/head``, ``refs/merge-requests/N/head``). The
project's pull-request scheduler builds it on the project's container targets (a
Docker pool's, or an EC2 pool's, each build on an instance of its own) as anyone's
code: a volume of its own, the compile cache read-only, nothing signed or published,
its artifacts under ``<project>/pr-<number>/``, removed when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from buildbot.plugins import util
from buildbot.process.properties import Properties
from twisted.internet import defer
from twisted.python import log

from rustfarm.farmfile import Farm
from rustfarm.farmfile.forge_settings import PullRequests
from rustfarm.names import (PULL_REQUEST_PROPERTY, PULL_REQUEST_SOURCE, builder_name,
                            scheduler_id)

from .schedulers import OncePerRevisionScheduler

# The change category of a pull request's head; the commit schedulers leave it alone.
PULL_CATEGORY = "pull"
# The change property carrying the request's number, read by its scheduler.
NUMBER_PROPERTY = "pull_request_number"


@dataclass(frozen=True)
class PullRequestEvent:
    """What a forge's pull-request webhook says, the same for every forge."""

    number: int
    ref: str                  # where the forge keeps its head
    head: str                 # the head commit
    from_fork: bool
    author: str
    labels: tuple[str, ...]
    title: str
    url: str
    opens: bool = False       # opened, reopened or pushed to: builds where allowed
    labelled: tuple[str, ...] = ()   # labels just added (a fork's request may build now)
    closes: bool = False      # closed or merged: its artifacts go

    def builds(self, settings: PullRequests) -> bool:
        if not settings.allows(self.from_fork, self.author, self.labels):
            return False
        # A label is news only for a fork's request that waited for it.
        return self.opens or (self.from_fork and settings.label in self.labelled)

    def change(self) -> dict:
        """The change a build of the request's head starts from."""
        return {"revision": self.head, "branch": self.ref, "category": PULL_CATEGORY,
                "author": self.author, "comments": self.title, "revlink": self.url,
                "properties": {NUMBER_PROPERTY: self.number}}


def _labels(items) -> tuple[str, ...]:
    return tuple(str(i.get("name") or i.get("title") or "") for i in items or ()
                 if isinstance(i, dict))


def github_pull_request(payload: dict, event: str) -> PullRequestEvent | None:
    """GitHub's ``pull_request`` event; Gitea sends the same shape (``synchronized``)."""
    if event not in ("pull_request", "pull_request_label"):     # Gitea's label changes
        return None
    pull, action = payload["pull_request"], payload.get("action", "")
    head_repo = (pull["head"].get("repo") or {}).get("full_name")
    number = int(payload.get("number") or pull["number"])
    return PullRequestEvent(
        number=number, ref=f"refs/pull/{number}/head", head=pull["head"]["sha"],
        from_fork=head_repo != pull["base"]["repo"]["full_name"],
        author=(pull.get("user") or {}).get("login", ""), labels=_labels(pull.get("labels")),
        title=pull.get("title", ""), url=pull.get("html_url", ""),
        opens=action in ("opened", "reopened", "synchronize", "synchronized"),
        labelled=_labelled(payload, action, pull), closes=action == "closed")


def _labelled(payload: dict, action: str, pull: dict) -> tuple[str, ...]:
    if action == "labeled":                 # GitHub names the label added
        return _labels([payload.get("label")])
    if action == "label_updated":           # Gitea: only that they changed; all count
        return _labels(pull.get("labels"))
    return ()


def gitlab_merge_request(payload: dict, event: str) -> PullRequestEvent | None:
    """GitLab's ``Merge Request Hook``; an update is built when it brings commits
    (``oldrev``) or the label a fork's request waits for."""
    if payload.get("object_kind") != "merge_request":
        return None
    attributes, action = payload["object_attributes"], payload["object_attributes"].get("action")
    number = int(attributes["iid"])
    added = set(_labels((payload.get("changes") or {}).get("labels", {}).get("current"))) - set(
        _labels((payload.get("changes") or {}).get("labels", {}).get("previous")))
    return PullRequestEvent(
        number=number, ref=f"refs/merge-requests/{number}/head",
        head=attributes["last_commit"]["id"],
        from_fork=attributes["source_project_id"] != attributes["target_project_id"],
        author=(payload.get("user") or {}).get("username", ""),
        labels=_labels(payload.get("labels")), title=attributes.get("title", ""),
        url=attributes.get("url", ""),
        opens=action in ("open", "reopen") or (action == "update" and "oldrev" in attributes),
        labelled=tuple(sorted(added)) if action == "update" else (),
        closes=action in ("close", "merge"))


class PullRequestScheduler(OncePerRevisionScheduler):
    """A project's pull requests, each head built once, with the request's number as a
    property of the scheduler's own (rustfarm/names.py): what makes the build anyone's."""

    @defer.inlineCallbacks
    def addBuildsetForChanges(self, changeids=None, properties=None, **kwargs):
        numbers = set()
        for changeid in changeids or []:
            change = yield self.master.db.changes.getChange(changeid)
            value = (change.properties or {}).get(NUMBER_PROPERTY)
            numbers.add(value[0] if isinstance(value, (list, tuple)) else value)
        valid = {n for n in numbers if isinstance(n, int) and n > 0}
        if len(valid) != 1 or len(numbers) != 1:
            log.msg(f"{self.name}: changes {changeids} name no single pull request; "
                    "not built")
            return None
        properties = properties or Properties()
        properties.setProperty(PULL_REQUEST_PROPERTY, valid.pop(), PULL_REQUEST_SOURCE)
        result = yield super().addBuildsetForChanges(changeids=changeids,
                                                     properties=properties, **kwargs)
        return result


def pull_request_builders(farm: Farm, project) -> list[str]:
    """The project's builders a pull request builds on: its targets in containers, on
    a Docker engine or on an EC2 instance of its own (a request's code never runs on a
    local worker, which is the host)."""
    return [builder_name(project.name, t) for t in project.targets
            if farm.pools[farm.targets[t].pool].kind in ("docker", "ec2")]


def pull_request_schedulers(farm: Farm) -> list:
    result = []
    for project in farm.projects.values():
        if project.forge is None or project.forge.pull_requests is None:
            continue
        builders = pull_request_builders(farm, project)
        if builders:
            result.append(PullRequestScheduler(
                name=scheduler_id(f"pulls-{project.name}"),
                change_filter=util.ChangeFilter(project=project.name, category=PULL_CATEGORY),
                treeStableTimer=None, builderNames=builders))
    return result
