"""The README and the pages of docs/ link to each other, to the repository's files and
to their sections: every relative link leads to a file that exists, and every
#anchor to a heading of that page."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         *sorted(REPO.glob("*/README.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_every_relative_link_leads_somewhere():
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue                      # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(REPO)}: {target}: no such section")
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_map_not_the_manual():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 300
    assert "./farm up" in readme and "tests/run" in readme
    linked = set(re.findall(r"\]\(docs/([\w\-]+\.md)", readme))
    assert linked == {page.name for page in (REPO / "docs").glob("*.md")}
