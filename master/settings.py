"""Which farm.yaml this master serves: $RUSTFARM_CONFIG, else the repository's own."""

from __future__ import annotations

import os
from pathlib import Path

from rustfarm.farmfile import Farm, load

CONFIG_ENV = "RUSTFARM_CONFIG"


def farm_path() -> Path:
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / "farm.yaml"


def load_farm() -> Farm:
    return load(farm_path())
