"""`farm compile` follows its job through whichever master answers: a master that does
not answer (it restarts) is passed over, and one that answers becomes the first."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rustfarm.cli.compile_command import CompileClient
from rustfarm.errors import FarmError
from tests.support.moto_server import free_port


class _JobServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, body: dict):
        self.status, self.body, self.seen = status, body, []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        data = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def job_server():
    servers = []

    def start(status: int, body: dict) -> _JobServer:
        server = _JobServer(status, body)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def url(server: _JobServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def test_a_poll_passes_over_a_master_that_does_not_answer(job_server, capsys):
    answering = job_server(200, {"job": "ab", "state": "running"})
    closed = f"http://127.0.0.1:{free_port()}/"
    client = CompileClient([closed, url(answering)], "secret-token")
    reply = client.poll("jobs/ab")
    assert reply is not None and reply.json()["state"] == "running"
    assert answering.seen == [("/plugins/compile/jobs/ab", "Bearer secret-token")]
    # The master that answered is asked first from now on.
    assert client.base == url(answering) + "plugins/compile/"
    assert "does not answer" in capsys.readouterr().out


def test_a_poll_while_no_master_answers_is_none_and_said_once(capsys):
    client = CompileClient([f"http://127.0.0.1:{free_port()}/"], "t")
    assert client.poll("jobs/ab") is None
    assert client.poll("jobs/ab") is None
    assert capsys.readouterr().out.count("does not answer") == 1


def test_a_job_no_master_knows_is_an_error_not_a_wait(job_server):
    gone = job_server(404, {"error": "no compile job ab"})
    client = CompileClient([url(gone)], "t")
    with pytest.raises(FarmError, match="no compile job ab"):
        client.poll("jobs/ab")
