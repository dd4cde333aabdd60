"""Recorded push and pull-request webhooks of GitHub, GitLab and Gitea
(tests/fixtures/forge/), made to name another repository and commit, and signed as each
forge signs them."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forge"
RECORDED_REPOSITORY = "acme/hello"
RECORDED_BEFORE = "9049f1265b7d61be4a8904a9a27120d2064dab3b"
RECORDED_AFTER = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
# In the recorded commit message: the master's log must never show it.
PAYLOAD_MARKER = "payload marker 7c1e"


def push_payload(kind: str, repository: str, before: str, after: str) -> bytes:
    """The recorded push of ``kind`` as a push of ``after`` (over ``before``) to
    ``repository`` (owner/name)."""
    text = (FIXTURES / f"{kind}-push.json").read_text()
    owner, name = repository.rsplit("/", 1)
    text = (text.replace(RECORDED_REPOSITORY, repository)
                .replace('"name": "hello"', f'"name": "{name}"')
                .replace('"login": "acme"', f'"login": "{owner}"')
                .replace('"username": "acme"', f'"username": "{owner}"')
                .replace(RECORDED_BEFORE, before).replace(RECORDED_AFTER, after))
    return text.encode()


# Each forge's name of a pull request's events: what a test says -> (event, action).
PULL_EVENTS = {
    "github": {"opened": ("pull_request", "opened"), "pushed": ("pull_request", "synchronize"),
               "labeled": ("pull_request", "labeled"), "closed": ("pull_request", "closed")},
    "gitea": {"opened": ("pull_request", "opened"), "pushed": ("pull_request", "synchronized"),
              "labeled": ("pull_request_label", "label_updated"),
              "closed": ("pull_request", "closed")},
    "gitlab": {"opened": ("Merge Request Hook", "open"), "pushed": ("Merge Request Hook", "update"),
               "labeled": ("Merge Request Hook", "update"),
               "closed": ("Merge Request Hook", "close")}}


def pull_request_payload(kind: str, repository: str, number: int, head: str, what: str,
                         from_fork: bool = True, author: str = "outsider",
                         labels: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The recorded pull (GitLab: merge) request of ``kind`` as request ``number`` to
    ``repository`` at ``head``, ``what`` happened to it (opened, pushed, labeled with
    the last of ``labels``, closed); its body and the event header's value."""
    event, action = PULL_EVENTS[kind][what]
    name = "gitlab-merge_request" if kind == "gitlab" else f"{kind}-pull_request"
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    if kind == "gitlab":
        attributes = payload["object_attributes"]
        payload["project"]["path_with_namespace"] = repository
        attributes.update(action=action, iid=number, url=f"{attributes['url'][:-1]}{number}")
        attributes["last_commit"]["id"] = head
        if not from_fork:
            attributes["source_project_id"] = attributes["target_project_id"]
        payload["user"]["username"] = author
        payload["labels"] = [{"id": 206 + i, "title": label} for i, label in enumerate(labels)]
        if what == "pushed":
            attributes["oldrev"] = RECORDED_BEFORE
        if what == "labeled":
            payload["changes"] = {"labels": {"previous": payload["labels"][:-1],
                                             "current": payload["labels"]}}
        return json.dumps(payload).encode(), event
    pull = payload["pull_request"]
    payload.update(action=action, number=number)
    pull.update(number=number, html_url=f"{pull['html_url'][:-1]}{number}")
    payload["repository"]["full_name"] = pull["base"]["repo"]["full_name"] = repository
    pull["head"]["sha"] = head
    if not from_fork:
        pull["head"]["repo"] = copy.deepcopy(pull["base"]["repo"])
    pull["user"]["login"] = author
    pull["labels"] = [{"id": 1362934389 + i, "name": label, "color": "0e8a16"}
                      for i, label in enumerate(labels)]
    if what == "labeled" and kind == "github":
        payload["label"] = pull["labels"][-1]
    return json.dumps(payload).encode(), event


def signed_headers(kind: str, secret: str | None, body: bytes,
                   event: str | None = None) -> dict[str, str]:
    """The headers ``kind`` sends ``event`` (a push) with, signed with ``secret`` (None:
    unsigned)."""
    digest = hmac.new((secret or "").encode(), body, hashlib.sha256).hexdigest()
    if kind == "github":
        headers = {"X-GitHub-Event": event or "push",
                   "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                   "User-Agent": "GitHub-Hookshot/044aadd"}
        if secret is not None:
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
    elif kind == "gitlab":
        headers = {"X-Gitlab-Event": event or "Push Hook", "User-Agent": "GitLab/17.0.0"}
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
    else:
        headers = {"X-Gitea-Event": event or "push",
                   "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
                   "User-Agent": "Go-http-client/1.1"}
        if secret is not None:
            headers["X-Gitea-Signature"] = digest
    return {"Content-Type": "application/json", **headers}
