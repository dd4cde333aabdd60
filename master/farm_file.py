"""Which farm.yaml this master serves: $RUSTFARM_CONFIG, else the repository's own."""

from __future__ import annotations

import os
from pathlib import Path

from rustfarm.farmfile import Farm, load

CONFIG_ENV = "RUSTFARM_CONFIG"
MASTER_ENV = "RUSTFARM_MASTER"   # which of farm.yaml's masters this process is


def farm_path() -> Path:
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / "farm.yaml"


def load_farm() -> Farm:
    """The farm as this master serves it."""
    farm = load(farm_path())
    name = os.environ.get(MASTER_ENV) or farm.masters[0].name
    return farm.as_master(name) if any(m.name == name for m in farm.masters) else farm
