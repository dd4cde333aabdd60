"""The images an engine holds (connecting to an engine: rustfarm/plumbing.py)."""

from __future__ import annotations

import docker


def local_image(client: docker.DockerClient, reference: str):
    """The image with this reference, or None."""
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
