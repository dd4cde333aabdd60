"""A small client of the master's REST API (``/api/v2``), used by the `farm` command."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.state import SecretStore, StateDir, ui_secret_name

RESULTS = {None: "running", 0: "success", 1: "warnings", 2: "failure", 3: "skipped",
           4: "exception", 5: "retry", 6: "cancelled"}


@dataclass
class FarmApi:
    base: str                      # e.g. http://127.0.0.1:8010/
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def for_farm(cls, farm: Farm) -> "FarmApi":
        return cls(f"http://{farm.www.host}:{farm.www.port}/")

    def url(self, path: str) -> str:
        return f"{self.base}api/v2/{path}"

    def answers(self) -> bool:
        try:
            return self.session.get(self.url("masters"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def get(self, path: str, **params) -> dict:
        try:
            reply = self.session.get(self.url(path), params=params, timeout=30,
                                     headers={"Accept": "application/json"})
        except requests.RequestException as err:
            raise FarmError(f"the master at {self.base} does not answer: {err}") from None
        if reply.status_code != 200:
            raise FarmError(f"GET {path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    def login(self, user: str, password: str) -> None:
        reply = self.session.get(f"{self.base}auth/login", auth=(user, password), timeout=30,
                                 allow_redirects=False)
        if reply.status_code not in (200, 302):
            raise FarmError(f"login as '{user}' refused by {self.base} (HTTP {reply.status_code})")

    def login_from_secrets(self, farm: Farm, user: str | None = None) -> str:
        if not farm.www.users:
            return "anonymous"
        user = user or farm.www.users[0]
        password = SecretStore(StateDir.of(farm).secrets).read(ui_secret_name(user))
        if not password:
            raise FarmError(f"no password for web UI user '{user}'; set one with "
                            f"`farm passwd {user}`")
        self.login(user, password)
        return user

    def rpc(self, path: str, method: str, **params) -> object:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            reply = self.session.post(self.url(path), json=body, timeout=30,
                                      headers={"Accept": "application/json"})
        except requests.RequestException as err:
            raise FarmError(f"the master at {self.base} does not answer: {err}") from None
        if reply.status_code == 403:
            raise FarmError(f"{method} on {path}: not allowed (log in as a user of www.users)")
        data = reply.json() if reply.headers.get("content-type", "").startswith(
            "application/json") else {}
        if reply.status_code != 200 or "error" in data:
            message = data.get("error", {}).get("message") if data else reply.text[:300]
            if isinstance(message, dict):   # a force form's errors, by field
                message = "; ".join(f"{field}: {text}" for field, text in message.items())
            raise FarmError(f"{method} on {path} failed: {message}")
        return data["result"]

    def step_log(self, buildid: int, step_number: int, log: str = "stdio") -> str:
        """A step's log as plain text (empty when the step has no such log)."""
        path = f"builds/{buildid}/steps/{step_number}/logs/{log}/raw"
        try:
            reply = self.session.get(self.url(path), timeout=60)
        except requests.RequestException as err:
            raise FarmError(f"the master at {self.base} does not answer: {err}") from None
        if reply.status_code == 404:
            return ""
        if reply.status_code != 200:
            raise FarmError(f"GET {path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.text

    def workers(self) -> list[dict]:
        return self.get("workers")["workers"]

    def builder_names(self) -> dict[int, str]:
        # Buildbot's own housekeeping builders start with "__".
        return {b["builderid"]: b["name"] for b in self.get("builders")["builders"]
                if not b["name"].startswith("__")}

    def recent_builds(self, limit: int) -> list[dict]:
        names = self.builder_names()
        builds = self.get("builds", order="-buildid", limit=limit)["builds"]
        return [{"builder": names.get(b["builderid"], b["builderid"]), "number": b["number"],
                 "state": f"{RESULTS.get(b['results'], b['results'])} ({b['state_string']})"}
                for b in builds]
