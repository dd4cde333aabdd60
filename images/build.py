"""Building the image chain: parents first, skipping every image whose content
tag is already present, with progress lines per image."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import docker

from rustfarm.errors import ImagesError
from rustfarm.progress import duration, Progress

from . import tags
from .engine import local_image
from .recipes import Catalog, Recipe, current_catalog, file_mode
from .tool_crates import context_files as tool_crate_files
from .wheels import ensure_wheels


class BuildError(ImagesError):
    def __init__(self, image: str, reason: str, tail: Iterable[str] = ()):
        self.image = image
        self.reason = reason
        self.tail = list(tail)
        super().__init__(image, reason)

    def __str__(self) -> str:
        text = f"building {self.image} failed: {self.reason}"
        if self.tail:
            text += "\n  last lines of output:\n" + "\n".join(f"    {line}" for line in self.tail)
        return text


class _StepFailed(Exception):
    """Raised inside an output stream when the engine reports an error."""


@dataclass
class BuildOutcome:
    name: str
    reference: str
    state: str        # "built" or "up to date"
    seconds: float
    date_tag: str | None


def image_date(image) -> str | None:
    return (image.labels or {}).get(tags.LABEL_DATE)


def _labels(catalog: Catalog, recipe: Recipe, date: str, now: datetime) -> dict[str, str]:
    labels = {
        tags.LABEL_TITLE: recipe.repository,
        tags.LABEL_CREATED: now.isoformat(timespec="seconds"),
        tags.LABEL_CONTENT: catalog.content_tag(recipe.key),
        tags.LABEL_DATE: date,
        tags.LABEL_PARENT: catalog.parent_reference(recipe) or "",
    }
    if recipe.target:
        labels[tags.LABEL_TARGET] = recipe.target.triple
    if recipe.toolchain:
        labels[tags.LABEL_TOOLCHAIN] = recipe.toolchain
    return labels


def _context(recipe: Recipe, log) -> io.BytesIO:
    """The build context: the Dockerfile and exactly the files it copies."""
    buffer = io.BytesIO()

    def add(name: str, data: bytes, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, 0
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w") as archive:
        add("Dockerfile", recipe.dockerfile.encode(), 0o644)
        for context_path, source in recipe.files:
            add(context_path, source.read_bytes(), file_mode(source))
        if recipe.wheels:
            for wheel in ensure_wheels(recipe.wheels, log=log):
                add(f"wheels/{wheel.name}", wheel.read_bytes(), 0o644)
        if recipe.tool_crates is not None:
            for name, data, mode in tool_crate_files(recipe.tool_crates, log):
                add(name, data, mode)
    buffer.seek(0)
    return buffer


def _build_output(chunks: Iterator[dict]) -> Iterator[str]:
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            raise _StepFailed(chunk.get("error") or chunk["errorDetail"].get("message", ""))
        if "stream" in chunk:
            yield chunk["stream"]
        elif "status" in chunk:
            yield " ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k))


def _is_recipe_step(line: str) -> bool:
    # The labels the build adds show up as steps of their own; they are noise.
    return line.startswith("Step ") and " : LABEL org." not in line


def _build_dockerfile(client, catalog: Catalog, recipe: Recipe, progress: Progress,
                      labels: dict[str, str]) -> None:
    reference = catalog.reference(recipe.key)
    context = _context(recipe, progress.say)
    try:
        chunks = client.api.build(
            fileobj=context, custom_context=True, tag=reference, rm=True, forcerm=True,
            pull=False, decode=True, labels=labels,
            buildargs={"PARENT": catalog.parent_reference(recipe)})
        progress.follow(recipe.repository, _build_output(chunks),
                        is_milestone=_is_recipe_step)
    except _StepFailed as exc:
        raise BuildError(reference, str(exc).strip(), getattr(exc, "tail", ())) from None
    except docker.errors.APIError as exc:
        raise BuildError(reference, exc.explanation or str(exc), getattr(exc, "tail", ())) from None


def _ensure_mmdebstrap(progress: Progress) -> None:
    if shutil.which("mmdebstrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        progress.say("    installing mmdebstrap (apt-get install mmdebstrap)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "mmdebstrap"]
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # a new machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode == 0 and shutil.which("mmdebstrap"):
            return
        raise BuildError("rustfarm/base", "installing mmdebstrap failed",
                         done.stderr.strip().splitlines()[-10:])
    raise BuildError("rustfarm/base", "mmdebstrap is needed to make the base image and is not"
                     " installed (and we are not root to install it): apt-get install mmdebstrap")


def _lines_of(process: subprocess.Popen) -> Iterator[str]:
    for line in process.stdout:
        yield line
    if process.wait() != 0:
        raise _StepFailed(f"make-rootfs.sh exited with status {process.returncode}")


def _build_rootfs(client, catalog: Catalog, recipe: Recipe, progress: Progress,
                  labels: dict[str, str]) -> None:
    reference = catalog.reference(recipe.key)
    _ensure_mmdebstrap(progress)
    script = dict(recipe.files)["base/make-rootfs.sh"]
    with tempfile.TemporaryDirectory(prefix="rustfarm-rootfs-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        process = subprocess.Popen(["/bin/sh", str(script), str(tarball)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace")
        try:
            progress.follow(recipe.repository, _lines_of(process),
                            is_milestone=lambda line: line.startswith("I: "))
        except _StepFailed as exc:
            raise BuildError(reference, str(exc), getattr(exc, "tail", ())) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        progress.say(f"    importing {tarball.stat().st_size // 2**20} MB root filesystem")
        changes = list(recipe.import_changes)
        changes += [f"LABEL {key}={value!r}" if " " in value else f"LABEL {key}={value}"
                    for key, value in labels.items() if value]
        repository, tag = tags.split_reference(reference)
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag,
                                              changes=changes)
        except docker.errors.APIError as exc:
            raise BuildError(reference, f"docker import failed: {exc.explanation or exc}") from None


def build_one(client, catalog: Catalog, recipe: Recipe, progress: Progress,
              now: datetime | None = None) -> BuildOutcome:
    now = now or datetime.now(timezone.utc)
    date = tags.date_tag(now, recipe.toolchain)
    reference = catalog.reference(recipe.key)
    parent = catalog.parent_reference(recipe)
    source = f"on {parent}" if parent else "from a bookworm root filesystem made by mmdebstrap"
    progress.say(f"==> building {reference} {source}")
    started = time.monotonic()
    labels = _labels(catalog, recipe, date, now)
    if recipe.is_rootfs:
        _build_rootfs(client, catalog, recipe, progress, labels)
    else:
        _build_dockerfile(client, catalog, recipe, progress, labels)
    image = local_image(client, reference)
    if image is None:
        raise BuildError(reference, "the engine reported success but the image is missing")
    image.tag(recipe.repository, date)
    seconds = time.monotonic() - started
    progress.say(f"<== built {reference} (and :{date}) in {duration(seconds)}")
    return BuildOutcome(recipe.key, reference, "built", seconds, date)


def build_images(client: docker.DockerClient, names: Iterable[str] | None = None, *,
                 root: Path | None = None, catalog: Catalog | None = None,
                 progress: Progress | None = None) -> list[BuildOutcome]:
    """Build the named images (None: every image of the default toolchain) and
    their parents, parents first.

    Images whose content tag exists in the engine are reported up to date and
    left alone. Raises BuildError, naming the image, on the first failure.
    """
    progress = progress or Progress()
    catalog = catalog or current_catalog(root)
    names = list(names) if names is not None else None
    outcomes = []
    started = time.monotonic()
    for recipe in catalog.closure(names):
        reference = catalog.reference(recipe.key)
        image = local_image(client, reference)
        if image is not None:
            built = image_date(image)
            progress.say(f"{reference} is up to date" + (f" (built {built})" if built else ""))
            outcomes.append(BuildOutcome(recipe.key, reference, "up to date", 0.0, built))
            continue
        outcomes.append(build_one(client, catalog, recipe, progress))
    built = sum(o.state == "built" for o in outcomes)
    progress.say(f"{built} built, {len(outcomes) - built} up to date,"
                 f" in {duration(time.monotonic() - started)}")
    return outcomes
