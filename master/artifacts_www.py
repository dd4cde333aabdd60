"""Serves the artifact store under ``/plugins/artifacts/`` of the master's web server.

A Buildbot www plugin: the directory comes from the plugin's configuration in
``c['www']['plugins']['artifacts']``, so each farm serves its own store.
"""

from __future__ import annotations

from pathlib import Path

from buildbot.www.plugin import Application
from twisted.web import static


class ArtifactStore(Application):
    def __init__(self) -> None:
        super().__init__(__name__.rsplit(".", 1)[0], "rustfarm build artifacts", ui=False)

    def setConfiguration(self, config: dict) -> None:
        super().setConfiguration(config)
        directory = Path(config["directory"])
        directory.mkdir(parents=True, exist_ok=True)
        self.resource = static.File(str(directory), defaultType="application/octet-stream")
        # Archives are served as they are: no gzip content-encoding guessing by browsers.
        self.resource.contentTypes = {**static.File.contentTypes,
                                      ".gz": "application/gzip",
                                      "": "application/octet-stream"}
        self.resource.contentEncodings = {}


ep = ArtifactStore()
