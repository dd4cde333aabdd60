"""What each forge's pull (merge) request webhook says, read the same for all three:
a request from the repository builds as it opens and at each push; one from a fork
only once it has the project's label or its author is allowed; closing removes."""

from __future__ import annotations

import json

import pytest

from rustfarm.farmfile.forge_settings import PullRequests
from rustfarm.master.pull_requests import github_pull_request, gitlab_merge_request
from tests.support.forge_payloads import pull_request_payload

HEAD = "0123456789abcdef0123456789abcdef01234567"
LABEL = "rustfarm: build"
SETTINGS = PullRequests(label=LABEL, authors=("trusted",))


def event(kind: str, what: str, **kwargs):
    body, header = pull_request_payload(kind, "acme/hello", 7, HEAD, what, **kwargs)
    read = gitlab_merge_request if kind == "gitlab" else github_pull_request
    return read(json.loads(body), header)


@pytest.mark.parametrize("kind", ["github", "gitea", "gitlab"])
def test_each_forge_s_request_names_its_head_ref_and_author(kind):
    opened = event(kind, "opened")
    ref = "refs/merge-requests/7/head" if kind == "gitlab" else "refs/pull/7/head"
    assert (opened.number, opened.ref, opened.head, opened.from_fork, opened.author) == \
        (7, ref, HEAD, True, "outsider")
    assert opened.change()["branch"] == ref and opened.change()["category"] == "pull"


@pytest.mark.parametrize("kind", ["github", "gitea", "gitlab"])
def test_a_fork_s_request_builds_once_labelled_or_from_an_allowed_author(kind):
    assert not event(kind, "opened").builds(SETTINGS)
    assert not event(kind, "pushed").builds(SETTINGS)
    assert not event(kind, "labeled", labels=("bug",)).builds(SETTINGS)
    assert event(kind, "labeled", labels=("bug", LABEL)).builds(SETTINGS)
    assert event(kind, "pushed", labels=(LABEL,)).builds(SETTINGS)
    assert event(kind, "opened", author="trusted").builds(SETTINGS)


@pytest.mark.parametrize("kind", ["github", "gitea", "gitlab"])
def test_the_repository_s_own_request_builds_as_it_opens_and_at_each_push(kind):
    assert event(kind, "opened", from_fork=False).builds(SETTINGS)
    assert event(kind, "pushed", from_fork=False).builds(SETTINGS)
    # A label on it brings nothing new to build.
    assert not event(kind, "labeled", from_fork=False, labels=(LABEL,)).builds(SETTINGS)


@pytest.mark.parametrize("kind", ["github", "gitea", "gitlab"])
def test_closing_builds_nothing_and_says_so(kind):
    closed = event(kind, "closed", from_fork=False)
    assert closed.closes and not closed.builds(SETTINGS)


def test_pushes_and_pings_are_not_requests():
    assert github_pull_request({"zen": "Design for failure."}, "ping") is None
    assert gitlab_merge_request({"object_kind": "push"}, "Push Hook") is None
