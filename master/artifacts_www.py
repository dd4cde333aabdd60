"""Serves the artifact store under ``/plugins/artifacts/`` of the master's web server.

A Buildbot www plugin: the directory comes from the plugin's configuration in
``c['www']['plugins']['artifacts']``, so each farm serves its own store.
Anyone may read it, so nothing outside the store is served: not through a
symbolic link, nor through ``..`` (which twisted's FilePath already refuses).

Pages, besides the files themselves:

- ``release-key.pub`` and ``release-keys.pub``: the public key that signs releases
  and every one that has (minisign's format);
- ``<project>/``: the project's releases (revisions), newest first;
- ``<project>/<revision>/``: the release page: every target's archive with its
  size and checksum, ``SHA256SUMS`` for them all and
  ``<project>-<revision>-all.tar.gz``, one archive of all targets;
- ``<project>/latest/...``: redirects to the newest revision every target of
  the project built successfully.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from buildbot.www.plugin import Application
from twisted.internet import threads
from twisted.web import resource, static

from rustfarm.attestations import PROVENANCE_FILE, binary_sizes
from rustfarm.release_files import REPRODUCED_FILE, SIGNATURE_FILE, SUMS_FILE
from rustfarm.release_keys import keys_file_text, published_keys

from .deferred_resource import DeferredResource
from .releases import ALL_DIR, Release, TargetArchive, all_targets_archive, latest_complete, \
    previous_release, read_release, releases
from .steps import human_size


# The public key that signs releases now, and every one that signed a release.
CURRENT_KEY_FILE = "release-key.pub"
ALL_KEYS_FILE = "release-keys.pub"


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
        if self.depth == 0 and name in (CURRENT_KEY_FILE, ALL_KEYS_FILE):
            keys = published_keys(self.keys_dir)
            if not keys:
                return resource.NoResource("this farm has signed no release yet")
            return static.Data(keys_file_text(keys[:1] if name == CURRENT_KEY_FILE else keys)
                               .encode(), "text/plain; charset=utf-8")
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

    def directoryListing(self):
        if self.depth == 0:
            return Page("rustfarm artifacts", projects_page(Path(self.path)))
        if self.depth == 1:
            project = Path(self.path).name
            return Page(f"{project}: releases",
                        project_page(Path(self.path), self.project_targets.get(project, [])))
        if self.depth == 2:
            release = read_release(Path(self.path).parent, Path(self.path).name)
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
        static.File(str(path), defaultType="application/gzip").render(request)


class Page(resource.Resource):
    isLeaf = True

    def __init__(self, title: str, body: str):
        super().__init__()
        self.title = title
        self.body = body

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return PAGE.format(title=html.escape(self.title), body=self.body).encode()


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: left;
          white-space: nowrap; }}
td.size {{ text-align: right; }}
code {{ font-size: 0.85em; }}
.missing {{ color: #a33; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def projects_page(store: Path) -> str:
    names = sorted(p.name for p in store.iterdir() if p.is_dir()) if store.is_dir() else []
    items = "".join(f'<li><a href="{html.escape(n)}/">{html.escape(n)}</a></li>' for n in names)
    return f"<ul>{items}</ul>" if names else "<p>Nothing has been built yet.</p>"


def project_page(project_dir: Path, targets: list[str]) -> str:
    found = releases(project_dir)
    if not found:
        return "<p>No release yet.</p>"
    rows = []
    for release in found:
        rev = html.escape(release.revision)
        complete = "all targets" if release.complete_for(targets) else \
            f'<span class="missing">{len(release.archives)} of {len(targets) or "?"} targets</span>'
        rows.append(f'<tr><td><a href="{rev}/">{rev}</a></td><td>{complete}</td>'
                    f"<td>{_when(release.first_built)}</td></tr>")
    latest = latest_complete(project_dir, targets)
    head = (f'<p><a href="latest/">latest</a>: {html.escape(latest.revision)}, the newest '
            "revision built for every target</p>") if latest else \
        "<p>No revision has been built for every target yet.</p>"
    return (head + "<table><tr><th>revision</th><th>built for</th><th>first built</th></tr>"
            + "".join(rows) + "</table>")


def _signed_files(archive: TargetArchive) -> str:
    """The target's other signed files (packages, SBOM, provenance) and its signature."""
    directory = archive.path.parent
    if not (directory / SIGNATURE_FILE).exists():
        return '<span class="missing">not signed</span>'
    try:
        listed = [line.split("  ", 1)[1] for line in
                  (directory / SUMS_FILE).read_text().splitlines()[1:] if "  " in line]
    except OSError:
        listed = []
    links = [f'<a href="{html.escape(archive.target)}/{html.escape(name)}">'
             f'{html.escape(name.rpartition(".")[2] if name.endswith((".deb", ".ipk")) else name)}'
             "</a>" for name in listed]
    return " ".join([*links, f'<a href="{html.escape(archive.target)}/{SIGNATURE_FILE}">'
                     "signature</a>"])


def _reproduced(archive: TargetArchive) -> str:
    """What the last `farm verify-build` of the target found."""
    try:
        outcome = json.loads((archive.path.parent / REPRODUCED_FILE).read_text())
    except (OSError, ValueError):
        return "not checked"
    build = html.escape(str(outcome.get("build", "")))
    if outcome.get("reproduced"):
        return f'<a href="{build}">reproduced</a>'
    differs = html.escape(", ".join(map(str, outcome.get("differs", []))))
    return f'<a class="missing" href="{build}">not reproduced: {differs}</a>'


def _sizes(archive: TargetArchive | None) -> dict[str, int]:
    if archive is None:
        return {}
    try:
        return binary_sizes((archive.path.parent / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _binaries(archive: TargetArchive, previous: TargetArchive | None) -> str:
    """Each binary's size, and how it changed since the previous release's."""
    before = _sizes(previous)
    parts = []
    for name, size in sorted(_sizes(archive).items()):
        change = ""
        if name in before and before[name] != size:
            delta = size - before[name]
            change = f' <span class="{"missing" if delta > 0 else ""}">(' \
                f'{"+" if delta > 0 else "-"}{human_size(abs(delta))})</span>'
        elif name in before:
            change = " (unchanged)"
        parts.append(f"{html.escape(name)} {human_size(size)}{change}")
    return "<br>".join(parts)


def release_page(release: Release, targets: list[str],
                 previous: Release | None = None) -> str:
    earlier = {a.target: a for a in previous.archives} if previous else {}
    rows = "".join(
        f'<tr><td>{html.escape(a.target)}</td>'
        f'<td><a href="{html.escape(a.member)}">{html.escape(a.name)}</a></td>'
        f'<td class="size">{human_size(a.size)}</td>'
        f"<td>{_binaries(a, earlier.get(a.target))}</td><td><code>{a.sha256}</code></td>"
        f"<td>{_signed_files(a)}</td><td>{_reproduced(a)}</td></tr>"
        for a in release.archives)
    missing = [t for t in targets if t not in release.targets]
    absent = (f'<p class="missing">Not built for: {html.escape(", ".join(missing))}</p>'
              if missing else "")
    return (f'<p><a href="../">all releases of {html.escape(release.project)}</a></p>'
            + absent
            + "<table><tr><th>target</th><th>archive</th><th>size</th>"
            + (f"<th>binaries (against {html.escape(previous.revision)})</th>" if previous
               else "<th>binaries</th>")
            + "<th>SHA-256</th><th>signed files</th><th>rebuilt</th></tr>"
            + rows + "</table>"
            + f'<p><a href="SHA256SUMS">SHA256SUMS</a> of every archive · '
            f'<a href="{html.escape(release.all_name)}">{html.escape(release.all_name)}</a>'
            " (every target, with SHA256SUMS)</p>")


ep = ArtifactStore()
