"""Serves the artifact store under ``/plugins/artifacts/`` of the master's web server.

A Buildbot www plugin: the directory comes from the plugin's configuration in
``c['www']['plugins']['artifacts']``, so each farm serves its own store.
Anyone may read it, so nothing outside the store is served: not through a
symbolic link, nor through ``..`` (which twisted's FilePath already refuses).
"""

from __future__ import annotations

import os
from pathlib import Path

from buildbot.www.plugin import Application
from twisted.web import static


class ArtifactFiles(static.File):
    """Archives are served as they are: never as gzip content-encoding, which clients
    would silently unpack (and then the SHA256SUMS would not match what they got)."""

    contentTypes = {**static.File.contentTypes, ".gz": "application/gzip"}
    contentEncodings: dict[str, str] = {}

    # The web UI loads these two files of every configured www plugin.
    _UI_FILES = {b"scripts.js": "text/javascript", b"styles.css": "text/css"}

    def getChild(self, path: bytes, request):
        if path in self._UI_FILES and self.path == self.root_path:
            return static.Data(b"", self._UI_FILES[path])
        return super().getChild(path, request)

    def createSimilarFile(self, path):
        # Every child file and directory is made here: refuse the ones whose real
        # place (links followed) is outside the store.
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root_real]) != self.root_real:
            return self.childNotFound
        similar = super().createSimilarFile(path)
        similar.root_path, similar.root_real = self.root_path, self.root_real
        return similar


class ArtifactStore(Application):
    def __init__(self) -> None:
        super().__init__(__name__.rsplit(".", 1)[0], "rustfarm build artifacts", ui=False)

    def setConfiguration(self, config: dict) -> None:
        super().setConfiguration(config)
        directory = Path(config["directory"])
        directory.mkdir(parents=True, exist_ok=True)
        self.resource = ArtifactFiles(str(directory), defaultType="application/octet-stream")
        self.resource.root_path = self.resource.path
        self.resource.root_real = os.path.realpath(directory)


ep = ArtifactStore()
