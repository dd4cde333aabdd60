"""Real crates.io for tests: reached through this machine's cargo, as the farm reaches it.

Tests that need it call :func:`require_crates_io`. Where it cannot be reached the
test is skipped with the reason; under CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .docker_engine import unavailable


@functools.cache
def _why_not() -> str | None:
    cargo = shutil.which("cargo")
    if not cargo:
        return "no cargo on this machine to reach crates.io with"
    with tempfile.TemporaryDirectory() as scratch:
        # A crate resolved from the index, in a cargo home of its own.
        crate = Path(scratch) / "probe"
        (crate / "src").mkdir(parents=True)
        (crate / "src" / "lib.rs").write_text("")
        (crate / "Cargo.toml").write_text('[package]\nname = "probe"\nversion = "0.1.0"\n'
                                          '[dependencies]\nitoa = "1"\n')
        probe = subprocess.run([cargo, "generate-lockfile"], cwd=crate, capture_output=True,
                               text=True, timeout=120,
                               env={**os.environ, "CARGO_HOME": str(Path(scratch) / "home")})
    if probe.returncode != 0:
        return f"crates.io does not answer this machine's cargo: {probe.stderr.strip()[-300:]}"
    return None


def require_crates_io() -> None:
    reason = _why_not()
    if reason:
        unavailable(reason)
