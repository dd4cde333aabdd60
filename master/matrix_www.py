"""The target matrix's data under ``/plugins/matrix/data.json``: projects as rows,
targets as columns.

A Buildbot www plugin beside the artifact store. Each cell is the newest build
of that (project, target): its result, revision, when it ended, the size of its
binaries, links to the build and to the download. ``data.json`` comes from two
queries, whatever the number of builders: the newest build of each builder, and
the few properties of those builds the cells show. The web UI's Targets page shows
it; ``/plugins/matrix/``, where a page of its own used to be, sends a browser there.

The plugin also carries the farm's pages of Buildbot's own web UI: its
``scripts.js`` and ``styles.css``, which the UI loads of every www plugin, are the
bundle built from master/www_plugin/ (shipped built in master/static/ui/), which
adds the menu entries Targets (this matrix, from ``data.json``) and Releases (the
artifact plugin's ``index.json`` pages).
"""

from __future__ import annotations

import json
from importlib import resources

import sqlalchemy as sa
from buildbot.process.results import statusToString
from buildbot.www.plugin import Application
from twisted.web.util import Redirect

from .deferred_resource import DeferredResource
from .plugin_root import PluginRoot

SHOWN_PROPERTIES = ("revision_label", "got_revision", "binary_sizes")


def newest_builds(connection, model) -> dict[str, dict]:
    """Builder name -> its newest build, with the properties the matrix shows."""
    builds, builders, props = model.builds, model.builders, model.build_properties
    newest = sa.select(sa.func.max(builds.c.id)).group_by(builds.c.builderid)
    rows = connection.execute(
        sa.select(builds.c.id, builds.c.number, builds.c.builderid, builds.c.results,
                  builds.c.started_at, builds.c.complete_at, builds.c.state_string,
                  builders.c.name)
        .select_from(builds.join(builders, builds.c.builderid == builders.c.id))
        .where(builds.c.id.in_(newest))).fetchall()
    found = {row.id: {"builder": row.name, "builderid": row.builderid, "number": row.number,
                      "result": "running" if row.results is None
                      else statusToString(row.results),
                      "started_at": row.started_at, "complete_at": row.complete_at,
                      "summary": row.state_string, "properties": {}} for row in rows}
    for row in connection.execute(
            sa.select(props.c.buildid, props.c.name, props.c.value)
            .where(props.c.buildid.in_(newest), props.c.name.in_(SHOWN_PROPERTIES))):
        if row.buildid in found:
            found[row.buildid]["properties"][row.name] = json.loads(row.value)
    return {build["builder"]: build for build in found.values()}


def matrix(config: dict, builds: dict[str, dict]) -> dict:
    """The page's data: the projects, the targets, and a cell per (project, target)."""
    url = config["url"]
    targets = config["targets"]
    cells = {}
    for project, wanted in config["projects"].items():
        for triple in wanted:
            build = builds.get(f"{project}:{triple}")
            if build is None:
                cells[f"{project} {triple}"] = {"result": "none"}
                continue
            props = build["properties"]
            label = props.get("revision_label")
            sizes = props.get("binary_sizes") or {}
            cell = {"result": build["result"], "number": build["number"],
                    "revision": label, "commit": props.get("got_revision"),
                    "ended": build["complete_at"], "started": build["started_at"],
                    "summary": build["summary"], "size": sum(sizes.values()) if sizes else None,
                    "build_url": f"{url}#/builders/{build['builderid']}/builds/"
                                 f"{build['number']}"}
            if label and build["result"] in ("success", "warnings"):
                cell["download_url"] = (f"{url}plugins/artifacts/{project}/{label}/{triple}/"
                                        f"{project}-{label}-{triple}.tar.gz")
                cell["release_url"] = f"{url}plugins/artifacts/{project}/{label}/"
                cell["release_page"] = f"{url}#/releases/{project}/{label}"
            cells[f"{project} {triple}"] = cell
    return {"projects": {p: list(t) for p, t in config["projects"].items()},
            "targets": targets, "cells": cells}


class MatrixData(DeferredResource):
    def __init__(self, plugin: "MatrixPlugin"):
        super().__init__()
        self.plugin = plugin

    def compute(self, request):
        return self.plugin.master.db.pool.do(newest_builds, self.plugin.master.db.model)

    def answer(self, request, builds: dict[str, dict]) -> None:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        request.write(json.dumps(matrix(self.plugin.config, builds)).encode())
        request.finish()


class MatrixPlugin(Application):
    def __init__(self) -> None:
        super().__init__(__name__.rsplit(".", 1)[0], "rustfarm target matrix", ui=False)

    def setConfiguration(self, config: dict) -> None:
        super().setConfiguration(config)
        static_dir = resources.files(__package__).joinpath("static")
        # Relative to /plugins/matrix/: the UI's root, wherever the UI is served from.
        self.resource = PluginRoot({b"": Redirect(b"../../#/targets"),
                                    b"data.json": MatrixData(self)}, ui=ui_bundle(static_dir))


def ui_bundle(static_dir) -> dict[bytes, bytes]:
    """The built web UI pages (master/static/ui/): {file name: content}; empty when
    they were not built."""
    found = {}
    for name in ("scripts.js", "styles.css"):
        path = static_dir.joinpath("ui", name)
        if path.is_file():
            found[name.encode()] = path.read_bytes()
    return found


ep = MatrixPlugin()
