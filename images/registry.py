"""Pushing images to a registry, pulling them back, and reading what it holds.

Images go to ``HOST:PORT/rustfarm/<name>`` with the same content and date tags
they have here. The registry's contents come from its v2 API (``/v2/_catalog``
and ``/v2/<name>/tags/list``): plain HTTP for a registry on loopback, HTTPS
first elsewhere.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator

import docker
import requests

from rustfarm.errors import ImagesError
from rustfarm.plumbing import is_loopback, url_host
from rustfarm.progress import duration, Progress

from . import tags
from .engine import local_image
from .recipes import NAMESPACE, Catalog, current_catalog

# Per-layer states worth a line of their own; "Pushing" and "Downloading" only
# feed the heartbeat.
MILESTONES = ("Pushed", "Layer already exists", "Mounted from", "Pull complete",
              "Already exists", "digest:", "Digest:", "Status:")


class RegistryError(ImagesError):
    """A registry refused, or could not be reached."""


def _stream_lines(chunks: Iterator[dict]) -> Iterator[str]:
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            raise RegistryError(chunk.get("error") or chunk["errorDetail"].get("message", ""))
        text = " ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k))
        if text:
            yield text


def _is_milestone(line: str) -> bool:
    return any(word in line for word in MILESTONES)


def _transfer(progress: Progress, what: str, reference: str, chunks) -> None:
    started = time.monotonic()
    progress.say(f"==> {what} {reference}")
    try:
        progress.follow(reference, _stream_lines(chunks), is_milestone=_is_milestone)
    except RegistryError as exc:
        tail = "\n".join(f"    {line}" for line in getattr(exc, "tail", []))
        raise RegistryError(f"{what} {reference} failed: {exc}"
                            + (f"\n  last lines of output:\n{tail}" if tail else "")) from None
    except docker.errors.APIError as exc:
        raise RegistryError(f"{what} {reference} failed: {exc.explanation or exc}") from None
    progress.say(f"<== {what.replace('ing', 'ed')} {reference} in {duration(time.monotonic() - started)}")


def push_images(client: docker.DockerClient, registry: str,
                names: Iterable[str] | None = None, *, catalog: Catalog | None = None,
                progress: Progress | None = None) -> list[str]:
    """Push the current images (all when ``names`` is None; else those and their
    parents) with their content and date tags. Returns the references pushed."""
    progress = progress or Progress()
    catalog = catalog or current_catalog()
    plan = catalog.closure(names)
    missing = [catalog.reference(r.key) for r in plan
               if local_image(client, catalog.reference(r.key)) is None]
    if missing:
        raise RegistryError("not built here, so not pushed: " + ", ".join(missing)
                            + " (run `farm images build` first)")
    pushed = []
    for recipe in plan:
        image = local_image(client, catalog.reference(recipe.key))
        remote = f"{registry}/{recipe.repository}"
        wanted = [catalog.content_tag(recipe.key)]
        date = (image.labels or {}).get(tags.LABEL_DATE)
        if date:
            wanted.append(date)
        for tag in wanted:
            image.tag(remote, tag)
            chunks = client.api.push(remote, tag=tag, stream=True, decode=True)
            _transfer(progress, "pushing", f"{remote}:{tag}", chunks)
            pushed.append(f"{remote}:{tag}")
    return pushed


def pull_images(client: docker.DockerClient, registry: str,
                names: Iterable[str] | None = None, *, catalog: Catalog | None = None,
                progress: Progress | None = None) -> list[str]:
    """Pull the current images from a registry and tag them ``rustfarm/<name>:<tag>``,
    so a machine can use them without building. Returns the local references."""
    progress = progress or Progress()
    catalog = catalog or current_catalog()
    pulled = []
    for recipe in catalog.closure(names):
        pull_image(client, registry, catalog.reference(recipe.key), progress)
        pulled.append(catalog.reference(recipe.key))
    return pulled


def pull_image(client: docker.DockerClient, registry: str, reference: str,
               progress: Progress) -> None:
    """Pull ``rustfarm/<name>:<tag>`` from a registry and tag it so locally (and with
    its date tag), with progress."""
    repository, _, tag = reference.rpartition(":")
    remote = f"{registry}/{repository}"
    chunks = client.api.pull(remote, tag=tag, stream=True, decode=True)
    _transfer(progress, "pulling", f"{remote}:{tag}", chunks)
    image = local_image(client, f"{remote}:{tag}")
    if image is None:
        raise RegistryError(f"pulled {remote}:{tag} but the engine does not show it")
    image.tag(repository, tag)
    date = (image.labels or {}).get(tags.LABEL_DATE)
    if date:
        image.tag(repository, date)


def _schemes(registry: str) -> list[str]:
    return ["http"] if is_loopback(url_host(f"//{registry}")) else ["https", "http"]


def _get_json(registry: str, path: str) -> tuple[dict, str | None]:
    """The JSON answer and the path of the next page (its Link header's "next")."""
    errors = []
    for scheme in _schemes(registry):
        url = f"{scheme}://{registry}{path}"
        try:
            response = requests.get(url, timeout=15)
            if response.status_code == 404:
                return {}, None
            response.raise_for_status()
            return response.json(), response.links.get("next", {}).get("url")
        except requests.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.response.status_code}")
        except (requests.RequestException, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    raise RegistryError(f"cannot read registry {registry}: " + "; ".join(errors))


def _all_pages(registry: str, path: str, key: str) -> list[str]:
    items: list[str] = []
    while path:
        answer, path = _get_json(registry, path)
        items.extend(answer.get(key) or [])
    return items


def registry_tags(registry: str) -> dict[str, list[str]]:
    """``rustfarm/<name>`` -> tags, for every rustfarm repository the registry holds."""
    found = {}
    for repository in _all_pages(registry, "/v2/_catalog?n=100", "repositories"):
        if repository.startswith(f"{NAMESPACE}/"):
            found[repository] = sorted(_all_pages(registry, f"/v2/{repository}/tags/list", "tags"))
    return found
