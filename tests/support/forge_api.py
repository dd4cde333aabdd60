"""A stand-in for a forge's API (GitHub's, GitLab's, Gitea's statuses, GitHub's check
runs and its App's installation tokens) and for a chat
system's webhook: an HTTP server on loopback, started by a test, that answers as the
forge would and records every request it gets, as moto does for EC2."""

from __future__ import annotations

import datetime
import json
import re
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .farm import wait_until

# What GitLab answers GET /api/v4/projects/<path> with: the project's id.
GITLAB_PROJECT_ID = 4242
# What GitHub answers GET /repos/<owner>/<name>/installation with, and the token it
# gives a GitHub App for an installation (POST /app/installations/<id>/access_tokens).
GITHUB_INSTALLATION_ID = 777001
INSTALLATION_TOKEN = "ghs_installation-token-5b1e"


def github_app_key():
    """A GitHub App's private key as GitHub gives it (RSA, PEM), and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: object          # the JSON body, or None

    def header(self, name: str) -> str | None:
        """A header, whatever case the client wrote its name in."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A master that stops drops its kept-alive connections: not the test's concern.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RecordingForge:
    """``url`` answers every request and keeps it in ``calls``, in order."""

    def __init__(self):
        self.calls: list[Call] = []
        # GitHub's check runs as made and updated: id -> the run's fields.
        self.check_runs: dict[int, dict] = {}
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"    # keep-alive, as the forges answer

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if not size:
                            return raw
                        raw += chunk
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _record(self):
                raw = self._body()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with recorder._lock:
                    recorder.calls.append(Call(self.command, self.path, dict(self.headers), body))
                return body

            def _answer(self, status: int, body: object):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._record()
                if self.path.startswith("/api/v4/projects/"):
                    self._answer(200, {"id": GITLAB_PROJECT_ID})
                elif re.fullmatch(r"/repos/[^/]+/[^/]+/installation", self.path):
                    self._answer(200, {"id": GITHUB_INSTALLATION_ID})
                elif listed := re.fullmatch(r"/repos/[^/]+/[^/]+/commits/(\w+)/check-runs",
                                            urlsplit(self.path).path):
                    query = parse_qs(urlsplit(self.path).query)
                    with recorder._lock:
                        runs = [run for run in recorder.check_runs.values()
                                if run["head_sha"] == listed[1]
                                and run["name"] in query.get("check_name", [run["name"]])]
                    self._answer(200, {"total_count": len(runs), "check_runs": runs})
                else:
                    self._answer(404, {"message": "Not Found"})

            def do_POST(self):
                body = self._record()
                if re.fullmatch(r"/app/installations/\d+/access_tokens", self.path):
                    expires = datetime.datetime.now(datetime.timezone.utc) \
                        + datetime.timedelta(hours=1)
                    self._answer(201, {"token": INSTALLATION_TOKEN,
                                       "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})
                    return
                made = {"id": len(recorder.calls), **(body if isinstance(body, dict) else {})}
                if re.fullmatch(r"/repos/[^/]+/[^/]+/check-runs", self.path):
                    with recorder._lock:
                        recorder.check_runs[made["id"]] = made
                self._answer(201, made)

            def do_PATCH(self):
                body = self._record()
                updated = re.fullmatch(r"/repos/[^/]+/[^/]+/check-runs/(\d+)", self.path)
                with recorder._lock:
                    run = recorder.check_runs.get(int(updated[1])) if updated else None
                    if run is not None and isinstance(body, dict):
                        run.update(body)
                        run = dict(run)
                if run is None:
                    self._answer(404, {"message": "Not Found"})
                else:
                    self._answer(200, run)

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "RecordingForge":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, method: str | None = None, prefix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls
                    if (method is None or c.method == method) and c.path.startswith(prefix)]

    def check_run_calls(self, repository: str, sha: str, timeout: float = 60) -> list[Call]:
        """The calls that made ``sha``'s one check run and updated it, once it completed:
        its POST, then its PATCHes (fails if there is not exactly one run)."""
        def completed():
            with self._lock:
                runs = [dict(run) for run in self.check_runs.values() if run["head_sha"] == sha]
            return runs if runs and all(r.get("status") == "completed" for r in runs) else None
        [run] = wait_until(completed, timeout, f"the completed check run of {sha[:12]}")
        made = [c for c in self.received("POST", f"/repos/{repository}/check-runs")
                if isinstance(c.body, dict) and c.body.get("head_sha") == sha]
        return made + self.received("PATCH", f"/repos/{repository}/check-runs/{run['id']}")
