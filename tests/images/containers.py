"""Running a fixture crate in a fresh container of an image: as rustbuild, with
no network, the crate copied in and chosen files copied back out."""

from __future__ import annotations

import io
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

FIXTURE_CRATES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
HOME = "/home/rustbuild"
RUSTBUILD_UID = 1000


@dataclass
class ContainerRun:
    exit_code: int
    output: str
    files: dict[str, Path] = field(default_factory=dict)


def container_name(purpose: str) -> str:
    return f"rustfarm-imgtest-{purpose}-{uuid.uuid4().hex[:8]}"


def _crate_archive(crate: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in [crate, *sorted(crate.rglob("*"))]:
            relative = path.relative_to(crate)
            if "target" in relative.parts:
                continue
            info = archive.gettarinfo(str(path), arcname=(Path("crate") / relative).as_posix())
            info.uid = info.gid = RUSTBUILD_UID
            info.uname = info.gname = "rustbuild"
            if path.is_file():
                with path.open("rb") as data:
                    archive.addfile(info, data)
            else:
                archive.addfile(info)
    return buffer.getvalue()


def run_crate(client: docker.DockerClient, image: str, crate: str, script: str,
              fetch: list[str] = (), outdir: Path | None = None, purpose: str = "crate",
              timeout: int = 900, environment: dict | None = None) -> ContainerRun:
    """Run ``script`` (bash) in ``~/crate`` of a new container; copy ``fetch`` paths
    (relative to the crate) into ``outdir``. The container is removed afterwards."""
    container = client.containers.create(
        image, command=["bash", "-euo", "pipefail", "-c", f"cd {HOME}/crate\n{script}"],
        name=container_name(purpose), user="rustbuild", network_mode="none",
        working_dir=HOME, environment=environment or {})
    try:
        root = Path(FIXTURE_CRATES / crate)
        container.put_archive(HOME, _crate_archive(root))
        container.start()
        status = container.wait(timeout=timeout)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        files = {}
        if status["StatusCode"] == 0 and outdir is not None:
            for relative in fetch:
                stream, _ = container.get_archive(f"{HOME}/crate/{relative}")
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                    member = archive.getmembers()[0]
                    target = outdir / Path(relative).name
                    target.write_bytes(archive.extractfile(member).read())
                    files[relative] = target
        return ContainerRun(status["StatusCode"], output, files)
    finally:
        container.remove(force=True)
