"""Docker clients for a pool's engines: TLS for tcp://, the ssh client for ssh://.

Kept free of Buildbot so that the `farm` command can use it without loading the master.
"""

from __future__ import annotations

import re
from pathlib import Path

from rustfarm.farmfile.model import DockerEngine

PING_TIMEOUT = 5


def client_args(url: str, tls: str = "") -> dict:
    """Keyword arguments of docker's clients (APIClient, DockerClient) for an engine:
    a tcp:// engine with a TLS directory is verified against its ca.pem and shown the
    client's cert.pem and key.pem, as DOCKER_TLS_VERIFY with DOCKER_CERT_PATH does."""
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


def docker_client(engine: DockerEngine, timeout: int = 20):
    """A docker.DockerClient for ``engine`` (through api_client)."""
    import docker
    client = docker.DockerClient(version="1.41", base_url=engine.url)  # asks nothing
    client.api = api_client(timeout=timeout, **client_args(engine.url, engine.tls))
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
