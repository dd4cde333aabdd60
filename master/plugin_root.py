"""The root resource of the farm's www plugins (matrix, compile)."""

from __future__ import annotations

from twisted.web import resource, static


class PluginRoot(resource.Resource):
    """A plugin's root: its children, and the two files the web UI loads of every
    configured www plugin: empty, or ``ui``'s (the built scripts.js and styles.css of
    a plugin that adds pages to the UI, {name: bytes})."""

    def __init__(self, children: dict[bytes, resource.Resource],
                 ui: dict[bytes, bytes] | None = None):
        super().__init__()
        for name, child in children.items():
            self.putChild(name, child)
        ui = ui or {}
        self.putChild(b"scripts.js", static.Data(ui.get(b"scripts.js", b""), "text/javascript"))
        self.putChild(b"styles.css", static.Data(ui.get(b"styles.css", b""), "text/css"))
