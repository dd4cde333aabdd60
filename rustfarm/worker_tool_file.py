"""The worker tool as workers run it: one file, a zip application (PEP 441) of the
package worker_tool/, the same bytes wherever it is assembled; and the line of a
worker's info by which a worker says it has a copy of this very version.

The target images carry a copy (images/target/Dockerfile.template), local workers
one in their directory; the master's steps run the worker's copy where its digest is
the master's, and send the master's to any other worker (master/tool_steps.py).
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from importlib import resources
from pathlib import Path

# The worker info key (a file of the worker's info/ directory): "DIGEST PATH".
INFO_KEY = "rustfarm_tool"
TOOL_NAME = "farm_worker_tool.pyz"
# Where the target images carry the tool.
IMAGE_TOOL = f"/usr/local/lib/rustfarm/{TOOL_NAME}"
# The package's name inside the zip application.
PACKAGE = "worker_tool"
# What the zip application runs (zipapp's own __main__.py for "worker_tool.commands:main").
MAIN = "# -*- coding: utf-8 -*-\nimport worker_tool.commands\nworker_tool.commands.main()\n"
# Every member's time: the zip's bytes depend on the package's files alone.
EPOCH = (1980, 1, 1, 0, 0, 0)


def package_root() -> Path:
    return Path(str(resources.files(__package__).joinpath(PACKAGE)))


def _package_files(root: Path) -> list[tuple[str, bytes, bool]]:
    """(path inside the package, content, executable) of every file of the package."""
    return [(path.relative_to(root).as_posix(), path.read_bytes(),
             path.suffix == ".sh")
            for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
            and path.suffix in (".py", ".sh")]


def _member(name: str, executable: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


def assemble(root: Path) -> bytes:
    """The zip application of the package in ``root``: its members sorted, stored
    uncompressed, all with one time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(_member("__main__.py", False), MAIN)
        for name, data, executable in _package_files(root):
            archive.writestr(_member(f"{PACKAGE}/{name}", executable), data)
    return buffer.getvalue()


@functools.cache
def tool_bytes() -> bytes:
    """The farm's worker tool."""
    return assemble(package_root())


def tool_digest(data: bytes | None = None) -> str:
    """The digest that names a version of the tool (default: the farm's)."""
    return hashlib.sha256(tool_bytes() if data is None else data).hexdigest()


def write_tool(directory: Path) -> Path:
    """The farm's tool in ``directory`` (left as it is when it is this version)."""
    path = directory / TOOL_NAME
    data = tool_bytes()
    if not (path.is_file() and path.read_bytes() == data):
        directory.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_bytes(data)
        part.replace(path)
    return path


def image_tool_info() -> bytes:
    """The worker info line of a target image, which carries the farm's tool."""
    return worker_tool_info(Path(IMAGE_TOOL)).encode()


def worker_tool_info(path: Path, data: bytes | None = None) -> str:
    """The info line of a worker whose copy of the tool, ``data`` (default: the farm's),
    lies at ``path``."""
    return f"{tool_digest(data)} {path}\n"
