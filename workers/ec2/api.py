"""What the EC2 worker and the reaper share: tag keys, connection settings, error codes.

Connections are made only when asked for, from a thread: building the master's
configuration never talks to AWS. Endpoint and credentials come from the
environment boto3 reads (``AWS_ENDPOINT_URL_EC2``, ``AWS_ACCESS_KEY_ID``,
``AWS_PROFILE``, an instance role, ...) unless given here, where they may be
Buildbot secrets (``util.Secret``) rendered when the connection is needed.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone
from typing import Mapping

TAG_FARM = "rustfarm:farm"
TAG_POOL = "rustfarm:pool"
TAG_WORKER = "rustfarm:worker"
# The Buildbot master (its name, host:basedir) whose worker launched the instance: in a
# farm of several masters, each one's reaper leaves the instances of the others be.
TAG_MASTER = "rustfarm:master"
TAG_VALUE_MAX = 256
RESERVED_TAG_PREFIXES = ("rustfarm:", "aws:")

# Instance states in which an instance costs money or may still start costing.
LIVE_STATES = ("pending", "running", "stopping", "stopped")
# Error codes of RunInstances meaning "no Spot capacity for you right now".
SPOT_UNAVAILABLE_CODES = frozenset({
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "Unsupported",
})


def tag_problems(tags) -> list[str]:
    """User tags that are not str -> str, or use a reserved prefix."""
    if tags is None:
        return []
    if not isinstance(tags, Mapping):
        return ["tags must be a dict of str to str"]
    found = []
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            found.append(f"tag {key!r} must map a string to a string")
        elif key.startswith(RESERVED_TAG_PREFIXES):
            found.append(f"tag {key!r} uses a reserved prefix "
                         f"({', '.join(RESERVED_TAG_PREFIXES)})")
    return found


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def master_tag(name: str) -> str:
    """A master's name as its instances' ``rustfarm:master`` tag: the name itself, or,
    past EC2's 256 characters for a tag value, a digest of it."""
    if len(name) <= TAG_VALUE_MAX:
        return name
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def tags_of(description: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in description.get("Tags", [])}


def age_text(launched: datetime | None, now: datetime | None = None) -> str:
    if launched is None:
        return "unknown age"
    now = now or datetime.now(timezone.utc)
    seconds = max(0, int((now - launched).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class Ec2Connector:
    """Makes, and reuses, boto3 EC2 clients for rendered connection settings.

    Call :meth:`client` from a thread (``deferToThread``): creating a session
    reads files and may ask an instance-metadata service for a role.
    """

    MAX_CLIENTS = 8   # a few regions; settings that changed (rotated secrets) drop out

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple, object] = {}

    def client(self, region: str, endpoint_url: str | None = None,
               access_key_id: str | None = None, secret_access_key: str | None = None,
               session_token: str | None = None):
        import boto3
        from botocore.config import Config

        key = (region, endpoint_url, access_key_id, secret_access_key, session_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = boto3.session.Session(
                    region_name=region, aws_access_key_id=access_key_id or None,
                    aws_secret_access_key=secret_access_key or None,
                    aws_session_token=session_token or None)
                client = session.client(
                    "ec2", endpoint_url=endpoint_url or None,
                    config=Config(retries={"mode": "standard", "max_attempts": 4},
                                  connect_timeout=10, read_timeout=60))
                if len(self._clients) >= self.MAX_CLIENTS:
                    self._clients.clear()
                self._clients[key] = client
            return client


def connection_problems(endpoint_url, access_key_id, secret_access_key) -> list[str]:
    """Half an access key pair, or an empty endpoint."""
    found = []
    if (access_key_id is None) != (secret_access_key is None):
        found.append("give both aws_access_key_id and aws_secret_access_key, or neither "
                     "(then the environment's credentials are used)")
    if endpoint_url == "":
        found.append("endpoint_url must not be empty (None: from the environment)")
    return found
