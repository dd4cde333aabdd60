"""The small pieces images/, workers/, master/ and the command line share: whether a
host is this machine's loopback, a file's SHA-256, a file's half-written sibling, waiting for something with a
deadline, and clients of Docker engines (TLS for tcp://, the ssh client for ssh://).
Free of Buildbot, so the `farm` command uses it without loading the master.

(The reproducible archive writer and the worker tool's digest are the worker tool's,
which must stand alone: rustfarm/worker_tool/archives.py, rustfarm/worker_tool_file.py.)
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import time
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from .errors import FarmError

T = TypeVar("T")

# A ping's patience; builds and pushes can be silent for minutes (a large layer).
PING_TIMEOUT = 5
LONG_TIMEOUT = 3600


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's content, read in blocks."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def partial_path(path: Path) -> Path:
    """Where to write ``path``'s new contents before renaming them over it: a hidden
    sibling of this writer's alone, so two writers of one file (two masters storing one
    revision's release) never rename, or write into, each other's half-written file."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


# -- hosts --------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    """A host name or address of this machine's loopback (not "": callers say what
    an empty setting means)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(url: str) -> str:
    """The host of a URL such as tcp://HOST:PORT or ssh://USER@HOST ("" without one)."""
    return urlsplit(url).hostname or ""


# -- deadlines ----------------------------------------------------------------

class DeadlinePassed(FarmError):
    """What was waited for did not happen in time."""


def wait_until(condition: Callable[[], T], timeout: float, what: str,
               interval: float = 0.5) -> T:
    """``condition()``'s first true value, asked every ``interval`` seconds;
    DeadlinePassed saying ``what`` did not happen once ``timeout`` seconds are over."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise DeadlinePassed(f"{what} within {timeout:.0f} s")
        time.sleep(interval)


# -- Docker engines -----------------------------------------------------------

class EngineError(FarmError):
    """No Docker engine answers at the given address."""


def client_args(url: str, tls: str = "") -> dict:
    """Keyword arguments of docker's clients (APIClient, DockerClient) for an engine:
    a tcp:// engine with a TLS directory is verified against its ca.pem and shown the
    client's cert.pem and key.pem, as DOCKER_TLS_VERIFY with DOCKER_CERT_PATH does; a
    bare socket path is a unix:// URL."""
    if url.startswith("/"):
        url = f"unix://{url}"
    args: dict = {"base_url": url}
    if tls:
        from docker.tls import TLSConfig
        directory = Path(tls)
        args["tls"] = TLSConfig(client_cert=(str(directory / "cert.pem"),
                                             str(directory / "key.pem")),
                                ca_cert=str(directory / "ca.pem"), verify=True)
    if url.startswith("ssh://"):
        args["use_ssh_client"] = True
    return args


def api_client(**args):
    """docker.APIClient(**args), verifying a TLS engine against its own CA: requests
    would otherwise take REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from the environment
    instead (the public CAs, which never signed an engine's certificate)."""
    import docker
    if not args.get("tls"):
        return docker.APIClient(**args)
    version = args.pop("version", None)
    negotiate = version in (None, "auto")
    # A given version asks the engine nothing yet: the environment is off before it is.
    client = docker.APIClient(version="1.41" if negotiate else version, **args)
    client.trust_env = False
    if negotiate:
        client._version = client.version(api_version=False)["ApiVersion"]
    return client


def docker_client(url: str | None = None, tls: str = "", timeout: int = 20):
    """A docker.DockerClient for the engine at ``url`` (None: DOCKER_HOST, or the local
    socket), through api_client."""
    import docker
    if not url:
        return docker.from_env(timeout=timeout)
    args = client_args(url, tls)
    client = docker.DockerClient(version="1.41", base_url=args["base_url"])  # asks nothing
    client.api = api_client(timeout=timeout, **args)
    return client


def connect(url: str | None = None, tls: str = "", timeout: int = LONG_TIMEOUT):
    """docker_client, once the engine answers; EngineError saying where and why not."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException
    try:
        client = docker_client(url, tls, timeout)
        client.ping()
    except (DockerException, RequestException, OSError) as err:
        where = url or "the default address (DOCKER_HOST or /var/run/docker.sock)"
        raise EngineError(f"no Docker engine answers at {where}: {engine_error(err)}") \
            from None
    return client


def engine_error(err: BaseException) -> str:
    """The part of a client's error that says why: "[Errno 111] Connection refused" rather
    than requests' whole chain of wrapped exceptions."""
    text = " ".join(str(err).split())
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        return errno.group(0).strip()
    return text[:300] or type(err).__name__


def ping(url: str, tls: str = "", timeout: int = PING_TIMEOUT) -> str:
    """Why the engine does not answer, or "" when it does."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException
    try:
        client = api_client(timeout=timeout, version="1.41", **client_args(url, tls))
        try:
            client.ping()
        finally:
            client.close()
    except (DockerException, RequestException, OSError) as err:
        return engine_error(err)
    return ""


# -- twistd applications ---------------------------------------------------------

def log_in_basedir(application, basedir: Path) -> None:
    """A twistd application's log: twistd.log in its base directory, rotated at 10 MB
    (10 kept), stamped to the microsecond so that where a build's time goes shows."""
    from twisted.python.log import FileLogObserver, ILogObserver
    from twisted.python.logfile import LogFile
    logfile = LogFile.fromFullPath(str(basedir / "twistd.log"), rotateLength=10_000_000,
                                   maxRotatedFiles=10)
    observer = FileLogObserver(logfile)
    observer.timeFormat = "%Y-%m-%d %H:%M:%S.%f"
    application.setComponent(ILogObserver, observer.emit)
