"""The artifact store's pages when it is an S3 bucket: the same URLs as a directory
store's (master/artifacts_www.py), ``index.json`` data beside them included, made
from the bucket's listing in a thread; a file is a redirect to a presigned URL of its
object, which expires after a while."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from twisted.internet import threads
from twisted.web import static

from rustfarm.artifact_store import download_link, store_root
from rustfarm.farmfile.model import ArtifactSettings, S3Artifacts
from rustfarm.names import PULL_REQUEST_DIR
from rustfarm.state import StateDir

from .deferred_resource import DeferredResource
from .release_pages import ALL_KEYS_FILE, CURRENT_KEY_FILE, DATA_FILE, PAGE, keys_text, \
    page_data, project_page, projects_page, release_page
from .releases import all_targets_archive, latest_complete, previous_release, read_release

class AsStoredFile(static.File):
    """A file served as it is: a .gz never with a gzip content-encoding, which clients
    would silently unpack (and its SHA256SUMS would then not match what they got)."""

    contentTypes = {**static.File.contentTypes, ".gz": "application/gzip"}
    contentEncodings: dict[str, str] = {}


# What a path part may be: a project, revision, target or file name; never "." or "..".
HIDDEN = (".", "..")
PULL_REQUEST_PLACE = re.compile(PULL_REQUEST_DIR.format(number=r"[0-9]+"))


class BucketPages(DeferredResource):
    """Every path below the plugin: (kind, value) worked out in a thread, then sent."""

    def __init__(self, root, keys_dir: Path, project_targets: dict[str, list[str]],
                 cache: Path):
        super().__init__()
        self.root = root
        self.keys_dir = keys_dir
        self.project_targets = project_targets
        self.cache = cache

    def compute(self, request):
        parts = [p.decode(errors="replace") for p in request.postpath]
        return threads.deferToThread(self.route, parts)

    def route(self, parts: list[str]) -> tuple[str, object]:
        if any(p in HIDDEN or (p.startswith(".") and p != ".reproduce") for p in parts[:-1]) \
                or parts[-1:] in ([".."], ["."]):
            return "missing", "no such page"
        trailing = parts[-1:] == [""]
        parts = [p for p in parts if p]
        if parts[-1:] == [DATA_FILE] and not trailing and len(parts) <= 3 \
                and not (len(parts) == 3 and PULL_REQUEST_PLACE.fullmatch(parts[1])):
            data = page_data(self.root, self.project_targets, parts[:-1])
            return ("json", data) if data is not None else ("missing", "no such release")
        if not parts:
            return "page", ("rustfarm artifacts", projects_page(self.root))
        if len(parts) == 1 and parts[0] in (CURRENT_KEY_FILE, ALL_KEYS_FILE):
            text = keys_text(self.keys_dir, parts[0])
            return ("text", text) if text else ("missing", "this farm has signed no release yet")
        project_dir = self.root / parts[0]
        targets = self.project_targets.get(parts[0], [])
        if len(parts) >= 2 and parts[1] == "latest":
            release = latest_complete(project_dir, targets)
            if release is None:
                return "missing", (f"no revision of {parts[0]} has been built for every one "
                                   "of its targets yet")
            rest = parts[2:] + ([""] if trailing else [])
            return "redirect", "../" * (len(rest) if rest else 0) + "/".join(
                [release.revision, *rest]) + ("" if rest else "/")
        if len(parts) == 1:
            if not trailing:
                return "redirect", f"{parts[0]}/"
            return "page", (f"{parts[0]}: releases", project_page(project_dir, targets))
        if PULL_REQUEST_PLACE.fullmatch(parts[1]):
            # A pull request's builds: their files as stored, never a release.
            path = project_dir.joinpath(*parts[1:])
            if trailing or len(parts) < 4 or not path.is_file():
                return "missing", "no such file"
            return "redirect", download_link(path)
        release = read_release(project_dir, parts[1])
        if release is None or not release.archives:
            return "missing", "no such release"
        if len(parts) == 2:
            if not trailing:
                return "redirect", f"{parts[1]}/"
            return "page", (f"{release.project} {release.revision}",
                            release_page(release, targets, previous_release(release)))
        if len(parts) == 3 and parts[2] == "SHA256SUMS":
            return "text", release.sha256sums()
        if len(parts) == 3 and parts[2] == release.all_name:
            return "file", all_targets_archive(release, self.cache / parts[0] / parts[1])
        path = project_dir.joinpath(*parts[1:])
        if trailing or not path.is_file():
            return "missing", "no such file"
        return "redirect", download_link(path)

    def answer(self, request, result) -> None:
        kind, value = result
        if kind == "redirect":
            request.setHeader(b"cache-control", b"no-store")
            request.redirect(value.encode())
            request.finish()
            return
        if kind == "file":
            AsStoredFile(str(value), defaultType="application/gzip").render(request)
            return
        request.setResponseCode(404 if kind == "missing" else 200)
        if kind == "json":
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"no-store")
            request.write(json.dumps(value).encode())
        elif kind == "page":
            title, body = value
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            request.write(PAGE.format(title=html.escape(title), body=body).encode())
        else:
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write(f"{value}\n".encode() if kind == "missing" else value.encode())
        request.finish()


def bucket_pages(config: dict):
    """The pages of an S3 store, from the plugin's configuration (plain data: the web
    UI is given it too)."""
    paths = StateDir(Path(config["state_dir"]))
    settings = ArtifactSettings(directory=paths.artifacts, keep=1, s3=S3Artifacts(**config["s3"]))
    return BucketPages(store_root(settings, paths), Path(config["keys"]),
                       dict(config.get("projects", {})), paths.root / "s3-cache" / "all")
