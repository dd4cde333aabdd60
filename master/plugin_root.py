"""The root resource of the farm's www plugins (matrix, compile)."""

from __future__ import annotations

from twisted.web import resource, static


class PluginRoot(resource.Resource):
    """A plugin's root: its children, and the two files the web UI loads of every
    configured www plugin (these plugins add nothing to the UI itself)."""

    def __init__(self, children: dict[bytes, resource.Resource]):
        super().__init__()
        for name, child in children.items():
            self.putChild(name, child)
        self.putChild(b"scripts.js", static.Data(b"", "text/javascript"))
        self.putChild(b"styles.css", static.Data(b"", "text/css"))
