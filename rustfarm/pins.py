"""`farm images pin`: point farm.yaml's image pins at the current content tags.

Only the tag of each ``rustfarm/<triple>:<toolchain>-<tag>`` pin changes; the
rest of the file (comments, order, other keys) stays as it was. The file is
replaced atomically, so an interrupted run leaves the old one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

from .farmfile import load


def repin(path: Path, current_reference: Callable[[str], str],
          only: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """Rewrite stale pins; returns (target@toolchain, old image, new image) for each change.

    ``current_reference("<triple>@<toolchain>")`` gives the reference the recipes
    make now; ``only`` limits the pins looked at to those keys.
    """
    farm = load(path)
    pins = farm.pinned_images()
    wanted = set(pins if only is None else only)
    text = path.read_text()
    changes = []
    for key, image in pins.items():
        triple = key.partition("@")[0]
        if key not in wanted:
            continue
        repository = image.rpartition(":")[0] if ":" in image.rpartition("/")[2] else image
        if not repository.endswith(f"rustfarm/{triple}"):
            continue            # not one of the farm's own images: left alone
        new = f"{repository}:{current_reference(key).rpartition(':')[2]}"
        if new == image:
            continue
        text = re.sub(rf"(?<![\w./:-]){re.escape(image)}(?![\w.:-])", new, text)
        changes.append((key, image, new))
    if changes:
        temporary = path.with_name(path.name + ".pinning")
        temporary.write_text(text)
        os.replace(temporary, path)
    return changes
