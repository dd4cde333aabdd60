"""Recorded push webhooks of GitHub, GitLab and Gitea (tests/fixtures/forge/), made
to name another repository and commit, and signed as each forge signs them."""

from __future__ import annotations

import hashlib
import hmac
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


def signed_headers(kind: str, secret: str | None, body: bytes) -> dict[str, str]:
    """The headers ``kind`` sends a push with, signed with ``secret`` (None: unsigned)."""
    digest = hmac.new((secret or "").encode(), body, hashlib.sha256).hexdigest()
    if kind == "github":
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                   "User-Agent": "GitHub-Hookshot/044aadd"}
        if secret is not None:
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
    elif kind == "gitlab":
        headers = {"X-Gitlab-Event": "Push Hook", "User-Agent": "GitLab/17.0.0"}
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
    else:
        headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
                   "User-Agent": "Go-http-client/1.1"}
        if secret is not None:
            headers["X-Gitea-Signature"] = digest
    return {"Content-Type": "application/json", **headers}
