"""What exists: each image's current content tag, the tags present here and in a
registry, the tag farm.yaml pins, and whether that pin is stale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import docker

from . import tags
from .recipes import NAMESPACE, Catalog, current_catalog
from .registry import registry_tags


@dataclass
class ImageState:
    name: str                           # the recipe's key: name or name@toolchain
    repository: str
    current: str                        # the recipe's content tag now
    local: list[str]                    # tags present in the engine
    remote: list[str] | None = None     # tags in the registry; None when not asked
    pin: str | None = None              # the reference farm.yaml pins

    @property
    def built(self) -> bool:
        return self.current in self.local

    @property
    def pushed(self) -> bool | None:
        return None if self.remote is None else self.current in self.remote

    @property
    def pinned_tag(self) -> str | None:
        return tags.split_reference(self.pin)[1] if self.pin else None

    @property
    def stale(self) -> bool:
        """farm.yaml pins something other than the current recipe."""
        return self.pin is not None and self.pinned_tag != self.current


@dataclass
class Inventory:
    images: list[ImageState]
    registry: str | None = None
    unknown_local: list[str] = field(default_factory=list)   # rustfarm/* with no recipe
    unknown_pins: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> ImageState:
        return next(state for state in self.images if state.name == name)

    @property
    def stale(self) -> list[ImageState]:
        return [state for state in self.images if state.stale]


def local_tags(client: docker.DockerClient) -> dict[str, list[str]]:
    """``rustfarm/<name>`` -> tags, for every rustfarm image in the engine."""
    found: dict[str, list[str]] = {}
    for image in client.images.list(name=f"{NAMESPACE}/*"):
        for reference in image.tags:
            repository, tag = tags.split_reference(reference)
            if repository.startswith(f"{NAMESPACE}/") and tag:
                found.setdefault(repository, []).append(tag)
    return {repository: sorted(found[repository]) for repository in found}


def inventory(client: docker.DockerClient, pins: Mapping[str, str] | None = None,
              registry: str | None = None, catalog: Catalog | None = None) -> Inventory:
    catalog = catalog or current_catalog()
    pins = dict(pins or {})
    here = local_tags(client)
    there = registry_tags(registry) if registry else None
    states = []
    seen = set()
    for recipe in catalog:
        seen.add(recipe.repository)
        states.append(ImageState(
            name=recipe.key,
            repository=recipe.repository,
            current=catalog.content_tag(recipe.key),
            local=[t for t in here.get(recipe.repository, [])
                   if tags.tag_toolchain(t) == recipe.toolchain],
            remote=None if there is None else [
                t for t in there.get(recipe.repository, [])
                if tags.tag_toolchain(t) == recipe.toolchain],
            pin=pins.pop(recipe.key, None)))
    unknown = sorted(repository for repository in here if repository not in seen)
    return Inventory(images=states, registry=registry, unknown_local=unknown,
                     unknown_pins=pins)


def _others(found: list[str], current: str) -> str:
    older = [tag for tag in found if tag != current and tags.is_content_tag(tag)]
    return f" +{len(older)} older" if older else ""


def format_inventory(result: Inventory) -> str:
    """A table, one image a line; then what needs doing."""
    header = ["IMAGE", "CURRENT TAG", "HERE", "REGISTRY", "PINNED", "STATE"]
    rows = []
    for state in result.images:
        dates = [tag for tag in state.local if tags.DATE_TAG.match(tag)]
        here = ("yes" + (f" ({dates[-1]})" if dates else "")) if state.built else "no"
        here += _others(state.local, state.current)
        if state.remote is None:
            remote = "-"
        else:
            remote = ("yes" if state.pushed else "no") + _others(state.remote, state.current)
        if state.pin is None:
            pinned, verdict = "-", ("up to date" if state.built else "not built")
        else:
            pinned = state.pinned_tag or state.pin
            verdict = "pin stale" if state.stale else "pinned"
            if not state.built:
                verdict += ", not built"
        rows.append([state.repository, state.current, here, remote, pinned, verdict])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    if result.registry:
        lines.append(f"registry: {result.registry}")
    stale = result.stale
    if stale:
        lines.append(f"{len(stale)} stale pin(s) in farm.yaml: "
                     + ", ".join(f"{s.name} pins {s.pinned_tag}, current is {s.current}"
                                 for s in stale))
    for name, reference in sorted(result.unknown_pins.items()):
        lines.append(f"farm.yaml pins {name} to {reference}, but no image recipe has that name")
    for repository in result.unknown_local:
        lines.append(f"{repository} is here but has no recipe any more")
    return "\n".join(lines)
