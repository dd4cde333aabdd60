"""`farm images pin`: point farm.yaml's image pins at the current content tags.

Only the tag of each ``rustfarm/<triple>:<tag>`` pin changes; the rest of the
file (comments, order, other keys) stays as it was. The file is replaced
atomically, so an interrupted run leaves the old one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

from .farmfile import load


def repin(path: Path, current_reference: Callable[[str], str],
          only: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """Rewrite stale pins; returns (target, old image, new image) for each change."""
    farm = load(path)
    wanted = set(only or farm.targets)
    text = path.read_text()
    changes = []
    for target in farm.targets.values():
        if target.triple not in wanted or not target.image:
            continue
        repository, _, _ = target.image.rpartition(":")
        if not repository.endswith(f"rustfarm/{target.triple}"):
            continue            # not one of the farm's own images: left alone
        new = f"{repository}:{current_reference(target.triple).rpartition(':')[2]}"
        if new == target.image:
            continue
        text = re.sub(rf"(?<![\w./:-]){re.escape(target.image)}(?![\w.:-])", new, text)
        changes.append((target.triple, target.image, new))
    if changes:
        temporary = path.with_name(path.name + ".pinning")
        temporary.write_text(text)
        os.replace(temporary, path)
    return changes
