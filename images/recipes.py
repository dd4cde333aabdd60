"""The image recipes: what each rustfarm image is built from, parents first.

    rustfarm/base      Debian bookworm (imported root filesystem, or debian:bookworm-slim)
    rustfarm/worker    + Python, buildbot-worker, git, the rustbuild user, the entrypoint
    rustfarm/rust      + rustc, cargo, qemu-user, Debian's crates as cargo's registry
    rustfarm/<triple>  + one target's std, cross gcc and C library (targets.yaml)

A recipe's build context holds exactly the files its Dockerfile copies (found by
reading its COPY lines), so the content tag covers everything the image is made
of. ``python -m rustfarm.images.recipes [NAME]`` prints the recipes with their
content tags, or one image's Dockerfile as it is built.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from . import tags
from .errors import ImagesError
from .targets import UNAVAILABLE, Target, TargetError, load_targets
from .wheels import WheelPin, read_pins

IMAGES_DIR = Path(__file__).resolve().parent
SLIM_IMAGE = "debian:bookworm-slim"
NAMESPACE = "rustfarm"

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
class BaseSource:
    """Where rustfarm/base comes from: a root filesystem made here, or Debian's image."""

    kind: str                     # "rootfs" or "slim"
    image_id: str | None = None   # the slim image's id, which the content tag includes

    def describe(self) -> str:
        if self.kind == "slim":
            return f"{SLIM_IMAGE} ({(self.image_id or '')[7:19]})"
        return "bookworm minbase root filesystem made by mmdebstrap"


ROOTFS = BaseSource("rootfs")


def file_mode(path: Path) -> int:
    """The mode a copied file gets in the build context: executable or not."""
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


@dataclass(frozen=True)
class Recipe:
    name: str
    parent: str | None                      # parent recipe's name; None for base
    dockerfile: str | None                  # None: base imported from a root filesystem
    files: tuple[tuple[str, Path], ...]     # build-context path -> source file
    wheels: tuple[WheelPin, ...] = ()       # pinned wheels placed in wheels/
    import_changes: tuple[str, ...] = ()    # Dockerfile lines applied by docker import
    external_parent: str | None = None      # FROM an image not made here
    extra_inputs: tuple[tuple[str, str], ...] = ()
    target: Target | None = None

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
        return items


@dataclass
class Catalog:
    """All recipes, parents before children, with their content tags."""

    recipes: dict[str, Recipe]
    targets: tuple[Target, ...]
    base_source: BaseSource
    root: Path
    _tags: dict[str, str] = field(default_factory=dict, repr=False)

    def __iter__(self):
        return iter(self.recipes.values())

    def get(self, name: str) -> Recipe:
        name = name.removeprefix(f"{NAMESPACE}/")
        try:
            return self.recipes[name]
        except KeyError:
            if name in UNAVAILABLE:
                raise RecipeError(f"no image for {name}: {UNAVAILABLE[name]}") from None
            known = ", ".join(self.recipes)
            raise RecipeError(f"no image named {name!r}; images: {known}") from None

    def content_tag(self, name: str) -> str:
        if name not in self._tags:
            recipe = self.get(name)
            parent_tag = self.content_tag(recipe.parent) if recipe.parent else None
            self._tags[name] = tags.content_tag(recipe.name, parent_tag, recipe.inputs())
        return self._tags[name]

    def reference(self, name: str) -> str:
        recipe = self.get(name)
        return f"{recipe.repository}:{self.content_tag(recipe.name)}"

    def parent_reference(self, recipe: Recipe) -> str | None:
        if recipe.parent:
            return self.reference(recipe.parent)
        return recipe.external_parent

    def lineage(self, name: str) -> list[Recipe]:
        """The image and its ancestors, base first."""
        chain = []
        recipe: Recipe | None = self.get(name)
        while recipe is not None:
            chain.append(recipe)
            recipe = self.get(recipe.parent) if recipe.parent else None
        return chain[::-1]

    def closure(self, names: Iterable[str] | None = None) -> list[Recipe]:
        """The named images (all when None) and their ancestors, parents first."""
        if names is None:
            return list(self.recipes.values())
        wanted = {r.name for name in names for r in self.lineage(name)}
        return [r for r in self.recipes.values() if r.name in wanted]


def copied_sources(dockerfile: str) -> list[str]:
    """Sources of the COPY and ADD lines that read the build context."""
    joined = dockerfile.replace("\\\n", " ")
    sources = []
    for line in joined.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        if rest.startswith("["):
            args = json.loads(rest)
        else:
            args = shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        paths = [a for a in args if not a.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def _context_files(name: str, dockerfile: str, root: Path) -> tuple[tuple[str, Path], ...]:
    files: dict[str, Path] = {}
    for source in copied_sources(dockerfile):
        relative = source.rstrip("/")
        if relative == "wheels":
            continue  # filled from the wheel cache; the pins are inputs already
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


def render_toolchain_dockerfile(template: str, target: Target) -> str:
    """The toolchain Dockerfile for one target: the template plus its row's values."""
    install_args = " ".join([target.debian_arch or "-", *target.packages])
    env = " \\\n    ".join(f"{key}={shlex.quote(value)}"
                           for key, value in target.environment().items())
    return (template.replace("@TRIPLE@", target.triple)
            .replace("@INSTALL_ARGS@", install_args)
            .replace("@ENV@", env))


def load_catalog(root: Path = IMAGES_DIR, base_source: BaseSource = ROOTFS) -> Catalog:
    """Read the recipes under ``root`` (the images/ folder)."""
    def text(relative: str) -> str:
        try:
            return (root / relative).read_text()
        except FileNotFoundError:
            raise RecipeError(f"missing recipe file {root / relative}") from None

    try:
        targets = load_targets(root / "targets.yaml")
    except (OSError, TargetError) as exc:
        raise RecipeError(str(exc)) from None

    recipes: dict[str, Recipe] = {}
    if base_source.kind == "slim":
        recipes["base"] = _dockerfile_recipe(
            "base", None, text("base/Dockerfile.slim"), root,
            external_parent=SLIM_IMAGE,
            extra_inputs=(("parent image id", base_source.image_id or ""),))
    else:
        script = root / "base/make-rootfs.sh"
        if not script.is_file():
            raise RecipeError(f"missing recipe file {script}")
        recipes["base"] = Recipe(name="base", parent=None, dockerfile=None,
                                 files=(("base/make-rootfs.sh", script),),
                                 import_changes=ROOTFS_CHANGES)
    recipes["worker"] = _dockerfile_recipe(
        "worker", "base", text("worker/Dockerfile"), root,
        wheels=read_pins(root / "worker/requirements.txt"))
    recipes["rust"] = _dockerfile_recipe("rust", "worker", text("rust/Dockerfile"), root)
    template = text("toolchain/Dockerfile.template")
    for target in targets:
        recipes[target.triple] = _dockerfile_recipe(
            target.triple, "rust", render_toolchain_dockerfile(template, target), root,
            target=target)
    return Catalog(recipes=recipes, targets=targets, base_source=base_source, root=root)


def detect_base_source(client) -> BaseSource:
    """debian:bookworm-slim when the engine has it, else the root filesystem made here."""
    from .engine import local_image

    slim = local_image(client, SLIM_IMAGE) if client is not None else None
    return BaseSource("slim", slim.id) if slim is not None else ROOTFS


def recipes_dir() -> Path:
    """images/ of this package, or RUSTFARM_IMAGES_DIR (to try a changed copy)."""
    return Path(os.environ.get("RUSTFARM_IMAGES_DIR") or IMAGES_DIR)


def current_catalog(client=None, root: Path | None = None) -> Catalog:
    """The recipes as the given engine would build them now."""
    return load_catalog(root or recipes_dir(), detect_base_source(client))


def current_reference(triple: str, docker_host: str | None = None) -> str:
    """``rustfarm/<triple>:<content-tag>``: the image farm.yaml should pin for a target.

    The content tag depends on the base image's source, so the engine is asked
    whether it holds debian:bookworm-slim; with no engine answering, the base is
    the root filesystem made here.
    """
    from .engine import EngineError, connect

    try:
        client = connect(docker_host, timeout=10)
    except EngineError:
        client = None
    try:
        return current_catalog(client).reference(triple)
    finally:
        if client is not None:
            client.close()


def _main(argv: list[str]) -> int:
    catalog = load_catalog(recipes_dir())  # as built where no debian:bookworm-slim is at hand
    if argv:
        recipe = catalog.get(argv[0])
        if recipe.is_rootfs:
            print(f"# {recipe.repository} is imported from the root filesystem that"
                  f" {recipe.files[0][0]} writes, with:")
            print("\n".join(recipe.import_changes))
        else:
            print(recipe.dockerfile, end="")
        return 0
    for recipe in catalog:
        files = ", ".join(path for path, _ in recipe.files) or "-"
        print(f"{catalog.reference(recipe.name):60} from {recipe.parent or '-':8} copies {files}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
