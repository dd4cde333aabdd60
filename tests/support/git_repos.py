"""Git repositories that tests push to: a bare repository as a project's source, and a
clone to commit and push from."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` as a test's committer; its output, stripped."""
    return subprocess.run(["git", "-c", "user.email=dev@example.invalid", "-c", "user.name=dev",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


class PushedRepository:
    """``directory``'s files as the first commit of a bare repository (``bare``, branch
    main), with a clone (``work``) whose commits ``push`` sends there."""

    def __init__(self, root: Path, name: str, directory: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        subprocess.run(["cp", "-r", str(directory), str(self.work)], check=True)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "add", ".")
        git(self.work, "commit", "-qm", "first")
        git(self.work, "remote", "add", "origin", str(self.bare))
        git(self.work, "push", "-q", "origin", "main")

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")

    def commit(self, path: str, content: str, message: str = "change") -> str:
        """Write ``content`` to ``path`` of the clone and commit it; the new commit."""
        (self.work / path).write_text(content)
        git(self.work, "commit", "-qam", message)
        return self.head()

    def push(self) -> str:
        git(self.work, "push", "-q", "origin", "main")
        return self.head()
