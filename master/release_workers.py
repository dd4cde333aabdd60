"""Which worker built each target of a release, as its provenance says: the verify
scheduler names them in a rebuild's request, and the builders then rebuild each target
on another worker (workers/rebuild_choice.py)."""

from __future__ import annotations

from rustfarm.artifact_store import StorePath
from rustfarm.release_files import release_worker

from .artifact_places import ArtifactPlaces

LABEL_LENGTH = 12       # a release's directory: its revision's first 12 characters


def release_dir(project_dir: StorePath, revision: str) -> StorePath | None:
    """The release of ``revision`` (its label, its commit or a prefix naming one)."""
    if not revision or "/" in revision or revision.startswith("."):
        return None
    exact = project_dir / revision[:LABEL_LENGTH]
    if exact.is_dir():
        return exact
    if len(revision) >= LABEL_LENGTH or not project_dir.is_dir():
        return None
    found = [p for p in project_dir.iterdir() if p.name.startswith(revision) and p.is_dir()]
    return found[0] if len(found) == 1 else None


def recorded_workers(places: ArtifactPlaces, project: str, revision: str,
                    targets: dict[str, str]) -> dict[str, str]:
    """{builder: the worker that built its target's release} for ``targets`` (builder:
    triple), of those whose release names its worker. Blocks: run it in a thread."""
    release = release_dir(places.root / project, revision)
    if release is None:
        return {}
    found = {builder: release_worker(release / triple) for builder, triple in targets.items()}
    return {builder: worker for builder, worker in found.items() if worker}
