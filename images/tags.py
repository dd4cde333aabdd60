"""Image tags: a content tag naming exactly one recipe, and a date tag for people.

The content tag is a short hash of everything an image is built from: its
Dockerfile, every file the Dockerfile copies, other inputs such as wheel hashes,
and the parent image's content tag. Equal tags mean equal recipes, so an image
whose content tag is present never needs building again. Images that carry a
Rust toolchain put its version in front of both tags (``1.96-3f2a...``,
``1.96-2026-11-22``), so a pin says which Rust it builds with.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Iterable

CONTENT_TAG_LENGTH = 12
TOOLCHAIN_PREFIX = r"(?:(?P<toolchain>\d+\.\d+)-)?"
DATE_TAG = re.compile(rf"^{TOOLCHAIN_PREFIX}\d{{4}}-\d{{2}}-\d{{2}}$")
CONTENT_TAG = re.compile(rf"^{TOOLCHAIN_PREFIX}[0-9a-f]{{{CONTENT_TAG_LENGTH}}}$")

# Labels every rustfarm image carries, read back by `farm images list` and push.
LABEL_CONTENT = "org.rustfarm.content-tag"
LABEL_DATE = "org.rustfarm.date-tag"
LABEL_PARENT = "org.rustfarm.parent"
LABEL_TARGET = "org.rustfarm.target"
LABEL_TOOLCHAIN = "org.rustfarm.toolchain"
LABEL_TITLE = "org.opencontainers.image.title"
LABEL_CREATED = "org.opencontainers.image.created"


def content_tag(name: str, parent_tag: str | None,
                inputs: Iterable[tuple[str, bytes]], toolchain: str | None = None) -> str:
    """Hash of an image's name, its parent's content tag and (key, bytes) inputs.

    Keys are paths or names (``Dockerfile``, ``scripts/apt-install.sh``,
    ``wheel buildbot-worker==4.3.0``); their order does not matter.
    """
    digest = hashlib.sha256()
    digest.update(f"rustfarm image {name}\nparent {parent_tag or '-'}\n".encode())
    for key, data in sorted(inputs):
        digest.update(f"{key}\0{len(data)}\0".encode())
        digest.update(data)
    digest = digest.hexdigest()[:CONTENT_TAG_LENGTH]
    return f"{toolchain}-{digest}" if toolchain else digest


def date_tag(now: datetime | None = None, toolchain: str | None = None) -> str:
    """Today's date in UTC, the tag telling when an image was built."""
    date = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    return f"{toolchain}-{date}" if toolchain else date


def is_content_tag(tag: str) -> bool:
    return bool(CONTENT_TAG.match(tag))


def tag_toolchain(tag: str) -> str | None:
    """The toolchain a content or date tag names (``1.96-...``), or None."""
    match = CONTENT_TAG.match(tag) or DATE_TAG.match(tag)
    return match.group("toolchain") if match else None


def split_reference(reference: str) -> tuple[str, str | None]:
    """``host:5000/rustfarm/x:tag`` -> (``host:5000/rustfarm/x``, ``tag``).

    A digest reference (``name@sha256:...``) returns the digest as its tag.
    """
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, digest
    head, sep, tail = reference.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return reference, None


def image_name(repository: str) -> str:
    """``host:5000/rustfarm/mipsel-unknown-linux-gnu`` -> ``mipsel-unknown-linux-gnu``."""
    return repository.rsplit("/", 1)[-1]
