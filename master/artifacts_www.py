"""Serves the artifact store under ``/plugins/artifacts/`` of the master's web server.

A Buildbot www plugin: the directory comes from the plugin's configuration in
``c['www']['plugins']['artifacts']``, so each farm serves its own store.
Anyone may read it, so nothing outside the store is served: not through a
symbolic link, nor through ``..`` (which twisted's FilePath already refuses). An S3
store's pages are master/artifacts_s3_www.py's, at the same URLs.

Pages, besides the files themselves:

- ``release-key.pub`` and ``release-keys.pub``: the public key that signs releases
  and every one that has (minisign's format);
- ``<project>/``: the project's releases (revisions), newest first;
- ``<project>/<revision>/``: the release page: every target's archive with its
  size and checksum, ``SHA256SUMS`` for them all and
  ``<project>-<revision>-all.tar.gz``, one archive of all targets;
- ``<project>/latest/...``: redirects to the newest revision every target of
  the project built successfully;
- ``index.json`` beside each of these pages (the store's, a project's, a
  release's): the page's data, which the web UI's Releases pages show.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from buildbot.www.plugin import Application
from twisted.internet import threads
from twisted.web import resource, static

from .artifacts_s3_www import AsStoredFile, bucket_pages
from .deferred_resource import DeferredResource
from .release_pages import ALL_KEYS_FILE, CURRENT_KEY_FILE, DATA_FILE, PAGE, keys_text, \
    page_data, project_page, projects_page, release_page
from .releases import ALL_DIR, Release, all_targets_archive, latest_complete, \
    previous_release, read_release


class ArtifactFiles(AsStoredFile):
    """The directory store: its files as they are (archives never as gzip
    content-encoding), and its pages."""

    # The web UI loads these two files of every configured www plugin.
    _UI_FILES = {b"scripts.js": "text/javascript", b"styles.css": "text/css"}

    def getChild(self, path: bytes, request):
        if path in self._UI_FILES and self.path == self.root_path:
            return static.Data(b"", self._UI_FILES[path])
        generated = self.child_of_page(path)
        if generated is not None:
            return generated
        return super().getChild(path, request)

    @property
    def depth(self) -> int:
        """0 for the store, 1 for a project, 2 for a revision, 3 for a target."""
        return len(Path(self.path).relative_to(self.root_path).parts)

    def child_of_page(self, path: bytes):
        """The generated children: the release keys, a project's ``latest``, a
        release's two files."""
        name = path.decode(errors="replace")
        if name == DATA_FILE and self.depth <= 2:
            data = self.page_data()
            if data is None:
                return resource.NoResource("no such release")
            return JsonData(data)
        if self.depth == 0 and name in (CURRENT_KEY_FILE, ALL_KEYS_FILE):
            text = keys_text(self.keys_dir, name)
            if not text:
                return resource.NoResource("this farm has signed no release yet")
            return static.Data(text.encode(), "text/plain; charset=utf-8")
        if self.depth == 1 and name == "latest":
            return LatestRelease(Path(self.path), self.project_targets.get(Path(self.path).name,
                                                                            []))
        if self.depth == 2:
            release = read_release(Path(self.path).parent, Path(self.path).name)
            if release and name == "SHA256SUMS":
                return static.Data(release.sha256sums().encode(), "text/plain; charset=utf-8")
            if release and release.archives and name == release.all_name:
                return AllTargets(release)
        if name == ALL_DIR:
            return self.childNotFound
        return None

    def page_data(self) -> dict | None:
        """The data of this directory's page (release_pages.page_data)."""
        parts = list(Path(self.path).relative_to(self.root_path).parts)
        return page_data(Path(self.root_path), self.project_targets, parts)

    def directoryListing(self):
        if self.depth == 0:
            return Page("rustfarm artifacts", projects_page(Path(self.path)))
        if self.depth == 1:
            project = Path(self.path).name
            return Page(f"{project}: releases",
                        project_page(Path(self.path), self.project_targets.get(project, [])))
        release = read_release(Path(self.path).parent, Path(self.path).name) \
            if self.depth == 2 else None
        if release is not None:          # not a pull request's pr-<number>/
            targets = self.project_targets.get(release.project, [])
            return Page(f"{release.project} {release.revision}",
                        release_page(release, targets, previous_release(release)))
        return super().directoryListing()

    def createSimilarFile(self, path):
        # Every child file and directory is made here: refuse the ones whose real
        # place (links followed) is outside the store.
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root_real]) != self.root_real:
            return self.childNotFound
        similar = super().createSimilarFile(path)
        similar.root_path, similar.root_real = self.root_path, self.root_real
        similar.project_targets = self.project_targets
        similar.keys_dir = self.keys_dir
        return similar


class ArtifactStore(Application):
    def __init__(self) -> None:
        super().__init__(__name__.rsplit(".", 1)[0], "rustfarm build artifacts", ui=False)

    def setConfiguration(self, config: dict) -> None:
        super().setConfiguration(config)
        if config.get("s3"):
            self.resource = bucket_pages(config)
            return
        directory = Path(config["directory"])
        directory.mkdir(parents=True, exist_ok=True)
        self.resource = ArtifactFiles(str(directory), defaultType="application/octet-stream")
        self.resource.root_path = self.resource.path
        self.resource.root_real = os.path.realpath(directory)
        # Which targets each project builds: a release is complete with all of them.
        self.resource.project_targets = dict(config.get("projects", {}))
        self.resource.keys_dir = Path(config.get("keys", directory / ".keys"))


class LatestRelease(resource.Resource):
    """``<project>/latest/<rest>``: a redirect to ``<project>/<revision>/<rest>``."""

    isLeaf = True

    def __init__(self, project_dir: Path, targets: list[str]):
        super().__init__()
        self.project_dir = project_dir
        self.targets = targets

    def render_GET(self, request):
        release = latest_complete(self.project_dir, self.targets)
        if release is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (f"no revision of {self.project_dir.name} has been built for every one of "
                    f"its targets yet\n").encode()
        rest = [part.decode(errors="replace") for part in request.postpath]
        # Relative, so it holds behind a proxy that moves the master's URL.
        location = ("../" * len(rest) + release.revision + "/" + "/".join(rest)) if rest \
            else release.revision + "/"
        request.redirect(location.encode())
        request.setHeader(b"cache-control", b"no-store")
        return b""


class AllTargets(DeferredResource):
    """One archive of a release's target archives and its SHA256SUMS, made in a thread."""

    def __init__(self, release: Release):
        super().__init__()
        self.release = release

    def compute(self, request):
        return threads.deferToThread(all_targets_archive, self.release)

    def answer(self, request, path: Path) -> None:
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            request.finish()
            return
        request.setHeader(b"content-disposition",
                          f'attachment; filename="{self.release.all_name}"'.encode())
        AsStoredFile(str(path), defaultType="application/gzip").render(request)


class JsonData(resource.Resource):
    isLeaf = True

    def __init__(self, data: dict):
        super().__init__()
        self.data = data

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self.data).encode()


class Page(resource.Resource):
    isLeaf = True

    def __init__(self, title: str, body: str):
        super().__init__()
        self.title = title
        self.body = body

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return PAGE.format(title=html.escape(self.title), body=self.body).encode()


ep = ArtifactStore()
