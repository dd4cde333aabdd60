"""The artifact store's pages, whichever the store: the projects, a project's
releases, and a release's targets with their archives, binaries' sizes against the
previous release, signed files and whether a rebuild reproduced them."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from rustfarm.attestations import PROVENANCE_FILE, binary_sizes
from rustfarm.release_files import REPRODUCED_FILE, SIGNATURE_FILE, SUMS_FILE, rebuilt_where
from rustfarm.release_keys import keys_file_text, published_keys

from .releases import Release, TargetArchive, latest_complete, previous_release, read_release, \
    releases
from .steps import human_size

# The public key that signs releases now, and every one that signed a release.
CURRENT_KEY_FILE = "release-key.pub"
ALL_KEYS_FILE = "release-keys.pub"


def keys_text(keys_dir: Path, name: str) -> str:
    """The current public key, or every one (``name``); "" before the first."""
    keys = published_keys(keys_dir)
    return keys_file_text(keys[:1] if name == CURRENT_KEY_FILE else keys) if keys else ""


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
    """What the last `farm verify-build` of the target found, and on which worker."""
    try:
        outcome = json.loads((archive.path.parent / REPRODUCED_FILE).read_text())
    except (OSError, ValueError):
        return "not checked"
    build = html.escape(str(outcome.get("build", "")))
    where = rebuilt_where(str(outcome.get("rebuilt_on") or ""),
                          str(outcome.get("release_built_on") or "") or None)
    where = f"<br>{html.escape(where)}" if where else ""
    if outcome.get("reproduced"):
        return f'<a href="{build}">reproduced</a>{where}'
    differs = html.escape(", ".join(map(str, outcome.get("differs", []))))
    return f'<a class="missing" href="{build}">not reproduced: {differs}</a>{where}'


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


# -- The same pages as data, for the web UI's Releases pages (``index.json``) ----------

DATA_FILE = "index.json"       # a page's data, beside the page


def page_data(store: Path, project_targets: dict[str, list[str]], parts: list[str]) -> dict | None:
    """The data of the page at ``parts`` below the store ([], [project] or [project,
    revision]); None for a directory that is no release."""
    if not parts:
        return projects_data(store, project_targets)
    targets = project_targets.get(parts[0], [])
    if len(parts) == 1:
        return project_data(store / parts[0], targets)
    release = read_release(store / parts[0], parts[1])
    if release is None or not release.archives:
        return None
    return release_data(release, targets, previous_release(release))


def projects_data(store: Path, project_targets: dict[str, list[str]]) -> dict:
    """The store's projects: each with its targets and its newest complete revision."""
    names = sorted(p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if store.is_dir() else []
    projects = []
    for name in names:
        targets = project_targets.get(name, [])
        latest = latest_complete(store / name, targets)
        projects.append({"name": name, "targets": list(targets),
                         "latest": latest.revision if latest else None,
                         "releases": len(releases(store / name))})
    return {"projects": projects}


def project_data(project_dir: Path, targets: list[str]) -> dict:
    """A project's releases, newest first."""
    latest = latest_complete(project_dir, targets)
    return {"project": project_dir.name, "targets": list(targets),
            "latest": latest.revision if latest else None,
            "releases": [{"revision": r.revision, "targets": r.targets,
                          "complete": r.complete_for(targets), "first_built": r.first_built}
                         for r in releases(project_dir)]}


def _signed_data(archive: TargetArchive) -> dict:
    directory = archive.path.parent
    if not (directory / SIGNATURE_FILE).exists():
        return {"signed": False, "files": []}
    try:
        listed = [line.split("  ", 1)[1] for line in
                  (directory / SUMS_FILE).read_text().splitlines()[1:] if "  " in line]
    except OSError:
        listed = []
    return {"signed": True, "signature": f"{archive.target}/{SIGNATURE_FILE}",
            "files": [{"name": name, "path": f"{archive.target}/{name}"} for name in listed]}


def _reproduced_data(archive: TargetArchive) -> dict | None:
    try:
        outcome = json.loads((archive.path.parent / REPRODUCED_FILE).read_text())
    except (OSError, ValueError):
        return None
    where = rebuilt_where(str(outcome.get("rebuilt_on") or ""),
                          str(outcome.get("release_built_on") or "") or None)
    return {"reproduced": bool(outcome.get("reproduced")), "build": outcome.get("build"),
            "differs": [str(d) for d in outcome.get("differs", [])], "where": where}


def release_data(release: Release, targets: list[str],
                 previous: Release | None = None) -> dict:
    """A release: every target's archive (paths relative to the release's URL), its
    binaries' sizes against the previous release, signed files and rebuild."""
    earlier = {a.target: a for a in previous.archives} if previous else {}
    archives = []
    for a in release.archives:
        before = _sizes(earlier.get(a.target))
        archives.append({
            "target": a.target, "name": a.name, "path": a.member, "size": a.size,
            "sha256": a.sha256, "built_at": a.built_at,
            "binaries": [{"name": name, "size": size, "previous": before.get(name)}
                         for name, size in sorted(_sizes(a).items())],
            **_signed_data(a), "rebuilt": _reproduced_data(a)})
    return {"project": release.project, "revision": release.revision,
            "previous": previous.revision if previous else None,
            "missing": [t for t in targets if t not in release.targets],
            "sums": "SHA256SUMS", "all": release.all_name if release.archives else None,
            "archives": archives}
