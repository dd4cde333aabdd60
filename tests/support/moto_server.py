"""EC2 for tests: moto's server on a free loopback port, and the AWS_* environment to reach it.

:class:`MotoEc2` serves moto's own WSGI application (what ``ThreadedMotoServer``
and ``moto_server`` serve) from a thread of the test process. Clients reach it
the way the farm reaches AWS: boto3 reads ``AWS_ENDPOINT_URL_EC2``.

moto always has capacity, so it never refuses a Spot launch. To test what
happens when EC2 does, :meth:`MotoEc2.refuse` makes the server answer chosen
requests with an EC2 error response (EC2's own XML error format), before they
reach moto; every other request is moto's. :meth:`MotoEc2.calls` lists the
EC2 API calls received (action and parameters), to check what was asked when.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

REGION = "eu-west-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Everything boto3 may read to find an endpoint, a region or credentials.
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def aws_environment(endpoint: str | None, credentials: bool = True,
                    base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose only AWS settings are these: no profile, files or IMDS."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in AWS_VARIABLES}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    if endpoint:
        env["AWS_ENDPOINT_URL_EC2"] = endpoint
    if credentials:
        env.update(DUMMY_CREDENTIALS)
    return env


@contextmanager
def aws_env(endpoint: str | None, credentials: bool = True, **extra: str) -> Iterator[None]:
    """Set the AWS_* environment of this process for a test, and restore it after."""
    saved = {k: os.environ[k] for k in AWS_VARIABLES if k in os.environ}
    for key in AWS_VARIABLES:
        os.environ.pop(key, None)
    os.environ.update({k: v for k, v in aws_environment(endpoint, credentials).items()
                       if k in AWS_VARIABLES})
    os.environ.update(extra)
    try:
        yield
    finally:
        for key in AWS_VARIABLES:
            os.environ.pop(key, None)
        os.environ.update(saved)


@dataclass
class Refusal:
    action: str
    when: Callable[[dict[str, str]], bool]
    code: str
    message: str
    status: int
    hits: int = 0


class _RefusingApp:
    """WSGI middleware: records EC2 Query API calls and answers chosen ones with an error."""

    def __init__(self, app):
        self.app = app
        self.refusals: list[Refusal] = []
        self.calls: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            with self.lock:
                if "Action" in params:
                    self.calls.append(params)
                refusal = next((r for r in self.refusals
                                if params.get("Action") == r.action and r.when(params)), None)
                if refusal is not None:
                    refusal.hits += 1
            if refusal is not None:
                xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                       f"<Code>{refusal.code}</Code><Message>{refusal.message}</Message>"
                       "</Error></Errors><RequestID>refused-by-test</RequestID></Response>")
                start_response(f"{refusal.status} Refused",
                               [("Content-Type", "text/xml"),
                                ("Content-Length", str(len(xml.encode())))])
                return [xml.encode()]
        return self.app(environ, start_response)


def launch_params_name_worker(params: dict[str, str], worker: str) -> bool:
    """True when a RunInstances request tags its instance rustfarm:worker=WORKER."""
    for key, value in params.items():
        if key.startswith("TagSpecification.") and key.endswith(".Key") \
                and value == "rustfarm:worker":
            if params.get(key[:-len("Key")] + "Value") == worker:
                return True
    return False


class MotoEc2:
    """moto's server on 127.0.0.1:<free port>, in a thread of this process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread: threading.Thread | None = None
        self._app: _RefusingApp | None = None

    def start(self) -> "MotoEc2":
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                   MotoRequestHandler, create_backend_app)
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._app = _RefusingApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-ec2")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> None:
        """Forget every resource (moto's own reset), refusal and recorded call."""
        self.clear_refusals()
        with self._app.lock:
            self._app.calls.clear()
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def refuse(self, action: str, code: str, message: str = "refused", status: int = 400,
               when: Callable[[dict[str, str]], bool] = lambda params: True) -> Refusal:
        """Answer ACTION requests for which when(params) is true with an EC2 error."""
        refusal = Refusal(action, when, code, message, status)
        with self._app.lock:
            self._app.refusals.append(refusal)
        return refusal

    def refuse_spot(self, worker: str, code: str = "InsufficientInstanceCapacity",
                    message: str = "There is no Spot capacity available that matches "
                                   "your request.", status: int = 500) -> Refusal:
        """Refuse Spot launches (RunInstances with InstanceMarketOptions) for one worker."""
        return self.refuse(
            "RunInstances", code, message, status,
            when=lambda p: (p.get("InstanceMarketOptions.MarketType") == "spot"
                            and launch_params_name_worker(p, worker)))

    def calls(self, action: str) -> list[dict[str, str]]:
        """The parameters of every ACTION call received so far, oldest first."""
        with self._app.lock:
            return [dict(c) for c in self._app.calls if c.get("Action") == action]

    def clear_refusals(self) -> None:
        with self._app.lock:
            self._app.refusals.clear()

    def environment(self, credentials: bool = True, base: dict[str, str] | None = None):
        return aws_environment(self.endpoint, credentials, base)

    def client(self, region: str = REGION):
        import boto3

        return boto3.session.Session(
            region_name=region, aws_access_key_id="testing",
            aws_secret_access_key="testing").client("ec2", endpoint_url=self.endpoint)


class ConnectionRecorder:
    """A TCP listener on loopback that counts connection attempts and answers nothing.

    Point an endpoint at it to prove that code does not call out: any attempt
    shows up in :attr:`connections`.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name="connection-recorder")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
