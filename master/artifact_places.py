"""Where a farm's builds leave their files, and where its releases are kept: both the
artifacts directory, or with an S3 store (rustfarm/artifact_store.py) a staging
directory on the master and the bucket."""

from __future__ import annotations

import functools
from pathlib import Path

from rustfarm.artifact_store import StorePath, remove_tree, store_root
from rustfarm.farmfile.model import ArtifactSettings
from rustfarm.state import StateDir


class ArtifactPlaces:
    def __init__(self, settings: ArtifactSettings, paths: StateDir):
        self.settings = settings
        self.paths = paths

    @property
    def remote(self) -> bool:
        return self.settings.s3 is not None

    @property
    def build_base(self) -> Path:
        """Where a build writes: ``<project>/<revision>/<target>/`` below it."""
        return self.paths.staging if self.remote else self.paths.artifacts

    @functools.cached_property
    def root(self) -> StorePath:
        """The store's top, made when first used (with S3, a client of the bucket)."""
        return store_root(self.settings, self.paths)

    def stored(self, local: Path | str) -> StorePath:
        """The place in the store of a build's directory below ``build_base``."""
        relative = Path(local).relative_to(self.build_base).as_posix()
        return self.root / relative

    def remove(self, relative: str) -> None:
        """A directory below ``build_base`` and its place in the store, both gone (with
        a directory store, one and the same)."""
        remove_tree(self.build_base / relative)
        if self.remote:
            remove_tree(self.root / relative)
