"""Connecting to the Docker engine that builds and holds the images.

``docker_host`` is what farm.yaml or DOCKER_HOST says: ``unix:///var/run/docker.sock``,
a bare socket path, ``tcp://HOST:PORT`` or ``ssh://USER@HOST`` (through the
system's ssh client). None means the environment's default (DOCKER_HOST, or the
local socket).
"""

from __future__ import annotations

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

from rustfarm.errors import ImagesError

# Builds and pushes can be silent for minutes (committing a large layer).
LONG_TIMEOUT = 3600


class EngineError(ImagesError):
    """No Docker engine answers at the given address."""


def connect(docker_host: str | None = None, timeout: int = LONG_TIMEOUT) -> docker.DockerClient:
    try:
        if not docker_host:
            client = docker.from_env(timeout=timeout)
        else:
            url = docker_host
            if url.startswith("/"):
                url = f"unix://{url}"
            client = docker.DockerClient(base_url=url, timeout=timeout,
                                         use_ssh_client=url.startswith("ssh://"))
        client.ping()
    except (DockerException, RequestException) as exc:
        where = docker_host or "the default address (DOCKER_HOST or /var/run/docker.sock)"
        raise EngineError(f"no Docker engine answers at {where}: {exc}") from None
    return client


def local_image(client: docker.DockerClient, reference: str):
    """The image with this reference, or None."""
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
