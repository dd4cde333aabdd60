"""Every shell script of the AMI and of the worker images passes shellcheck.

Scripts are found by a ``.sh`` suffix or a shell shebang, so a new script in
ami/ or images/ is checked without touching this file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.docker_engine import unavailable

from .harness import REPO_ROOT

SCRIPT_FOLDERS = ("ami", "images", "tests/ami")
SHELL_SHEBANG = re.compile(rb"^#!\s*(/usr/bin/env\s+)?(\S*/)?(sh|bash|dash|ksh)\b")
SKIPPED_PARTS = {"__pycache__", ".git", "node_modules"}


def is_shell_script(path: Path) -> bool:
    if path.suffix == ".sh":
        return True
    try:
        with path.open("rb") as script:
            return bool(SHELL_SHEBANG.match(script.readline(200)))
    except OSError:
        return False


def shell_scripts() -> list[Path]:
    found = []
    for folder in SCRIPT_FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.is_file() and not SKIPPED_PARTS & set(path.parts) and is_shell_script(path):
                found.append(path)
    return found


SCRIPTS = shell_scripts()


def test_the_ami_scripts_are_found():
    names = {path.relative_to(REPO_ROOT).as_posix() for path in SCRIPTS}
    assert "ami/provision.sh" in names


@pytest.mark.parametrize("script", SCRIPTS,
                         ids=[path.relative_to(REPO_ROOT).as_posix() for path in SCRIPTS])
def test_shellcheck(script: Path):
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        unavailable("shellcheck is not installed")
    checked = subprocess.run([shellcheck, "--external-sources", str(script)],
                             cwd=script.parent, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
