"""The worker tool (scripts/farm_worker_tool.py): where it lies, and the line of a
worker's info by which the worker says it has a copy of one version of it.

The target images carry a copy (their entrypoint writes the line), local workers
run the farm's own; the master's build steps run the worker's copy where its
digest matches theirs and send the tool along with each command otherwise.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

# The worker info key (a file of the worker's info/ directory): "DIGEST PATH".
INFO_KEY = "rustfarm_tool"


def worker_tool_path() -> Path:
    return Path(str(resources.files(__package__).joinpath("scripts", "farm_worker_tool.py")))


def worker_tool_info(path: Path | None = None) -> str:
    """The info line of a worker whose copy of the tool is ``path`` (default: the farm's)."""
    path = path or worker_tool_path()
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()} {path}\n"
