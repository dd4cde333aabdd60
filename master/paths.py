"""The master's directories, derived from the farm's state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rustfarm.farmfile import Farm
from rustfarm.state import StateDir


@dataclass(frozen=True)
class MasterPaths:
    secrets: Path
    sources: Path
    snapshots: Path
    artifacts: Path
    uploads: Path          # compile jobs: each upload and its results, for a while

    @classmethod
    def of(cls, farm: Farm) -> "MasterPaths":
        state = StateDir.of(farm)
        return cls(secrets=state.secrets, sources=state.sources, snapshots=state.snapshots,
                   artifacts=farm.artifacts.directory, uploads=state.root / "uploads")
