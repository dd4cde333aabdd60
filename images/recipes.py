"""The image recipes: what each rustfarm image is built from, parents first.

    rustfarm/base                  Debian bookworm, a root filesystem made by mmdebstrap
    rustfarm/worker                + Python, buildbot-worker, git, the rustbuild user
    rustfarm/rust:<toolchain>-*    + one Rust toolchain, qemu-user, Debian's crates
    rustfarm/<triple>:<toolchain>-*  + one target's linker, C library and std

Targets and toolchains come from rustfarm/targets.yaml. A recipe's build
context holds exactly the files its Dockerfile copies (found by reading its COPY
lines), so the content tag covers everything the image is made of.
``farm images recipes [NAME[@TOOLCHAIN]]`` prints the recipes with their content
tags, or one image's Dockerfile as it is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from rustfarm.errors import ImagesError
from rustfarm.targets import load_table, target_table, TargetError, TargetSpec, TargetTable
from rustfarm.worker_tool_file import INFO_KEY, TOOL_NAME, image_tool_info, tool_bytes

from . import tags
from .dockerfiles import (copied_pins, copied_sources, render_target_dockerfile,
                          render_toolchain_dockerfile)
from .tool_crates import CONTEXT_DIR as TOOL_CRATES_DIR
from .wheels import WheelPin, read_pins

IMAGES_DIR = Path(__file__).resolve().parent
NAMESPACE = "rustfarm"
TOOLCHAIN_IMAGE = "rust"
# The package pinning the audit tools every target image carries.
AUDIT_TOOLS = "target/audit-tools"

# docker import gives an image no configuration: these make the imported base
# behave like debian:bookworm-slim.
ROOTFS_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
)


class RecipeError(ImagesError, ValueError):
    """A recipe is incomplete or names something that does not exist."""


@dataclass(frozen=True)
class MadeFile:
    """A build-context file the farm makes rather than one of the checkout's."""

    make: Callable[[], bytes]
    mode: int = 0o644

    def read_bytes(self) -> bytes:
        return self.make()


def file_mode(path: "Path | MadeFile") -> int:
    """The mode a copied file gets in the build context: executable or not."""
    if isinstance(path, MadeFile):
        return path.mode
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


@dataclass(frozen=True)
class Recipe:
    name: str
    parent: str | None                      # parent recipe's key; None for base
    dockerfile: str | None                  # None: base imported from a root filesystem
    files: tuple[tuple[str, Path | MadeFile], ...]     # build-context path -> source file
    wheels: tuple[WheelPin, ...] = ()       # pinned wheels placed in wheels/
    import_changes: tuple[str, ...] = ()    # Dockerfile lines applied by docker import
    extra_inputs: tuple[tuple[str, str], ...] = ()
    target: TargetSpec | None = None
    toolchain: str | None = None            # the Rust toolchain it carries, if any
    # The package pinning the crates placed in tool-crates/ (images/tool_crates.py),
    # and the images a stage of its Dockerfile starts from besides its parent.
    tool_crates: Path | None = None
    needs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``name`` or ``name@toolchain``: one recipe among the catalog's."""
        return f"{self.name}@{self.toolchain}" if self.toolchain else self.name

    @property
    def repository(self) -> str:
        return f"{NAMESPACE}/{self.name}"

    @property
    def is_rootfs(self) -> bool:
        return self.dockerfile is None

    def inputs(self) -> list[tuple[str, bytes]]:
        """Everything the content tag is a hash of, besides name and parent tag."""
        items: list[tuple[str, bytes]] = []
        if self.dockerfile is not None:
            items.append(("Dockerfile", self.dockerfile.encode()))
        for context_path, source in self.files:
            items.append((f"file {context_path} {file_mode(source):o}", source.read_bytes()))
        for pin in self.wheels:
            items.append((f"wheel {pin.name}=={pin.version}", pin.sha256.encode()))
        for number, change in enumerate(self.import_changes):
            items.append((f"import change {number}", change.encode()))
        for key, value in self.extra_inputs:
            items.append((key, value.encode()))
        if self.tool_crates is not None:
            items.append(("tool crates Cargo.lock", (self.tool_crates / "Cargo.lock").read_bytes()))
        return items


@dataclass
class Catalog:
    """All recipes, parents before children, with their content tags."""

    recipes: dict[str, Recipe]              # by key
    table: TargetTable
    root: Path
    _tags: dict[str, str] = field(default_factory=dict, repr=False)

    def __iter__(self):
        return iter(self.recipes.values())

    @property
    def default_toolchain(self) -> str:
        return self.table.default_toolchain

    def key(self, name: str) -> str:
        """A recipe's key from ``name``, ``name@toolchain`` or ``rustfarm/name:tag``:
        a toolchain image without a toolchain means the default toolchain's."""
        name = name.removeprefix(f"{NAMESPACE}/")
        if "@" in name or name in self.recipes:
            return name
        if ":" in name:
            name, _, tag = name.partition(":")
            toolchain = tags.tag_toolchain(tag)
            return f"{name}@{toolchain}" if toolchain else name
        return f"{name}@{self.default_toolchain}"

    def get(self, name: str) -> Recipe:
        key = self.key(name)
        try:
            return self.recipes[key]
        except KeyError:
            pass
        image, _, toolchain = key.partition("@")
        if image in self.table:
            able = ", ".join(self.table.get(image).toolchains)
            raise RecipeError(f"toolchain {toolchain} cannot build {image}: no std for it"
                              f" (toolchains that can: {able})") from None
        if image == TOOLCHAIN_IMAGE or toolchain:
            if toolchain not in self.table.toolchains:
                raise RecipeError(f"unknown toolchain {toolchain!r}; toolchains:"
                                  f" {', '.join(self.table.toolchains)}") from None
        known = ", ".join(t.triple for t in self.table)
        raise RecipeError(f"no image named {image!r}; images: base, worker,"
                          f" {TOOLCHAIN_IMAGE} and one per target: {known}") from None

    def content_tag(self, name: str) -> str:
        key = self.key(name)
        if key not in self._tags:
            recipe = self.get(key)
            parent_tag = self.content_tag(recipe.parent) if recipe.parent else None
            self._tags[key] = tags.content_tag(recipe.name, parent_tag, recipe.inputs(),
                                               recipe.toolchain)
        return self._tags[key]

    def reference(self, name: str) -> str:
        recipe = self.get(name)
        return f"{recipe.repository}:{self.content_tag(recipe.key)}"

    def parent_reference(self, recipe: Recipe) -> str | None:
        return self.reference(recipe.parent) if recipe.parent else None

    def lineage(self, name: str) -> list[Recipe]:
        """The image and its ancestors, base first."""
        chain = []
        recipe: Recipe | None = self.get(name)
        while recipe is not None:
            chain.append(recipe)
            recipe = self.get(recipe.parent) if recipe.parent else None
        return chain[::-1]

    def requirements(self, name: str) -> list[Recipe]:
        """What must exist to build the image: its lineage and the images its stages
        start from, with theirs."""
        wanted = self.lineage(name)
        for recipe in list(wanted):
            for needed in recipe.needs:
                wanted += self.requirements(needed)
        return wanted

    def closure(self, names: Iterable[str] | None = None) -> list[Recipe]:
        """The named images and their ancestors, parents first. None: every
        image of the default toolchain."""
        if names is None:
            names = [r.key for r in self if r.toolchain in (None, self.default_toolchain)]
        wanted = {r.key for name in names for r in self.requirements(name)}
        return [r for r in self.recipes.values() if r.key in wanted]

    def target_keys(self, triples: Iterable[str] | None = None,
                    toolchains: Iterable[str] | None = None) -> list[str]:
        """Keys of target images: these triples (all) for these toolchains (the default)."""
        toolchains = list(toolchains or [self.default_toolchain])
        for version in toolchains:
            if version not in self.table.toolchains:
                self.get(f"{TOOLCHAIN_IMAGE}@{version}")     # says which exist
        keys = []
        for triple in [t.triple for t in self.table] if triples is None else triples:
            for version in toolchains:
                key = f"{triple}@{version}"
                self.get(key)                # an unknown or impossible pair fails here
                keys.append(key)
        return keys


# Build-context files from outside images/: the worker tool, as the farm assembles it
# (rustfarm/worker_tool_file.py), is every target image's last layer.
OUTSIDE_FILES = {
    f"tool/{TOOL_NAME}": MadeFile(tool_bytes),
    f"tool/worker-info/{INFO_KEY}": MadeFile(image_tool_info),
}


def _context_files(name: str, dockerfile: str,
                   root: Path) -> tuple[tuple[str, Path | MadeFile], ...]:
    files: dict[str, Path | MadeFile] = {}
    for source in copied_sources(dockerfile):
        relative = source.rstrip("/")
        if relative in ("wheels", TOOL_CRATES_DIR):
            continue  # filled from the host's caches; the pins are inputs already
        if relative in OUTSIDE_FILES:
            files[relative] = OUTSIDE_FILES[relative]
            continue
        made = {name: f for name, f in OUTSIDE_FILES.items() if name.startswith(relative + "/")}
        if made:
            files.update(made)
            continue
        path = root / relative
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and "__pycache__" not in item.parts:
                    files[item.relative_to(root).as_posix()] = item
        elif path.is_file():
            files[relative] = path
        else:
            raise RecipeError(f"{NAMESPACE}/{name}: its Dockerfile copies {source!r},"
                              f" which is not in {root}")
    return tuple(sorted(files.items()))


def _dockerfile_recipe(name: str, parent: str | None, dockerfile: str, root: Path,
                       **extra) -> Recipe:
    return Recipe(name=name, parent=parent, dockerfile=dockerfile,
                  files=_context_files(name, dockerfile, root), **extra)


def load_catalog(root: Path = IMAGES_DIR, table: TargetTable | None = None) -> Catalog:
    """Read the recipes under ``root`` (the images/ folder) for the targets table."""
    def text(relative: str) -> str:
        try:
            return (root / relative).read_text()
        except FileNotFoundError:
            raise RecipeError(f"missing recipe file {root / relative}") from None

    table = table or target_table()
    recipes: dict[str, Recipe] = {}

    def add(recipe: Recipe) -> None:
        recipes[recipe.key] = recipe

    script = root / "base/make-rootfs.sh"
    if not script.is_file():
        raise RecipeError(f"missing recipe file {script}")
    add(Recipe(name="base", parent=None, dockerfile=None,
               files=(("base/make-rootfs.sh", script),), import_changes=ROOTFS_CHANGES))
    add(_dockerfile_recipe("worker", "base", text("worker/Dockerfile"), root,
                           wheels=read_pins(root / "worker/requirements.txt")))
    for version in table.toolchains:
        dockerfile = render_toolchain_dockerfile(text(f"rust/{version}.Dockerfile"), table,
                                                 version)
        add(_dockerfile_recipe(TOOLCHAIN_IMAGE, "worker", dockerfile, root,
                               wheels=copied_pins(dockerfile, root), toolchain=version))
    template = text("target/Dockerfile.template")
    tools = f"{TOOLCHAIN_IMAGE}@{table.default_toolchain}"
    tools_image = Catalog(recipes=dict(recipes), table=table, root=root).reference(tools)
    for target, version in table.pairs():
        dockerfile = render_target_dockerfile(template, target, version, tools_image)
        add(_dockerfile_recipe(target.triple, f"{TOOLCHAIN_IMAGE}@{version}", dockerfile, root,
                               wheels=copied_pins(dockerfile, root), target=target,
                               toolchain=version, tool_crates=root / AUDIT_TOOLS,
                               needs=(tools,)))
    return Catalog(recipes=recipes, table=table, root=root)


def recipes_dir() -> Path:
    """images/ of this package, or RUSTFARM_IMAGES_DIR (to try a changed copy)."""
    return Path(os.environ.get("RUSTFARM_IMAGES_DIR") or IMAGES_DIR)


def targets_file() -> Path | None:
    """RUSTFARM_TARGETS_FILE, to try a changed targets table; None: the shipped one."""
    path = os.environ.get("RUSTFARM_TARGETS_FILE")
    return Path(path) if path else None


def current_catalog(root: Path | None = None) -> Catalog:
    """The recipes as they are now (the same on every machine)."""
    table_path = targets_file()
    try:
        table = load_table(table_path) if table_path else None
    except TargetError as exc:
        raise RecipeError(str(exc)) from None
    return load_catalog(root or recipes_dir(), table)


def current_reference(name: str) -> str:
    """``rustfarm/<triple>:<toolchain>-<content-tag>``: the image farm.yaml should pin
    for a target (``triple@toolchain`` for another than the default toolchain)."""
    return current_catalog().reference(name)


def describe(catalog: Catalog, name: str | None = None) -> str:
    """``farm images recipes``: every image with its content tag and parent, or the
    Dockerfile of one (``name`` or ``name@toolchain``) as it is built."""
    if name is None:
        return "".join(f"{catalog.reference(recipe.key):60} from {recipe.parent or '-':10} "
                       f"copies {len(recipe.files)} files\n" for recipe in catalog)
    recipe = catalog.get(name)
    if recipe.is_rootfs:
        return (f"# {recipe.repository} is imported from the root filesystem that"
                f" {recipe.files[0][0]} writes, with:\n" + "\n".join(recipe.import_changes) + "\n")
    return recipe.dockerfile
