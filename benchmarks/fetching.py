"""How long the dependencies step takes to resolve and fetch a real application's
crates (benchmarks/fixtures/big-app: 196 packages from crates.io), through the same
code the farm's step runs (rustfarm/dependencies.py).

    .venv/bin/python benchmarks/fetching.py [--runs 3]

Prints, each a median of --runs:
  cold        an empty crate store and an empty cargo home: everything downloaded
  cold store  an empty store, cargo's own cache warm (a store entry removed, say)
  warm        every crate in the store: its Cargo.lock read and each entry checked
              (the goal: under 1 s)
  resolve     the same project without its Cargo.lock, every crate in the store: the
              farm resolves a lock with cargo, then checks the store
Needs crates.io (the machine's cargo reaches it). Prints figures only.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rustfarm.crate_store import CrateStore  # noqa: E402
from rustfarm.dependencies import (CargoSettings, fetch_dependencies,  # noqa: E402
                                   machine_config_files)

APP = REPO / "benchmarks" / "fixtures" / "big-app"


def snapshot(directory: Path, into: Path, lock: bool = True) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if "target" in path.parts or (not lock and path.name == "Cargo.lock"):
                continue
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    into.write_bytes(buffer.getvalue())
    return into


def timed(scratch: Path, project: Path, store: Path, home: Path) -> tuple[float, int, int]:
    settings = CargoSettings(cargo_home=home, config_files=machine_config_files())
    started = time.monotonic()
    fetched = fetch_dependencies(project, "", CrateStore(store), settings)
    return time.monotonic() - started, len(fetched.packages), len(fetched.downloaded)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"cold": [], "cold store": [], "warm": [], "resolve": []}
    counts = {}
    with tempfile.TemporaryDirectory(prefix="rustfarm-fetching-") as tmp:
        scratch = Path(tmp)
        locked = snapshot(APP, scratch / "locked.tar.gz")
        lockless = snapshot(APP, scratch / "lockless.tar.gz", lock=False)
        for run in range(args.runs):
            store, home = scratch / f"store-{run}", scratch / f"home-{run}"
            for label, project in (("cold", locked), ("warm", locked), ("resolve", lockless)):
                seconds, packages, downloaded = timed(scratch, project, store, home)
                figures[label].append(seconds)
                counts[label] = (packages, downloaded)
            shutil.rmtree(store)
            seconds, packages, downloaded = timed(scratch, locked, store, home)
            figures["cold store"].append(seconds)
            counts["cold store"] = (packages, downloaded)
            print(f"run {run + 1}: " + ", ".join(f"{label} {values[-1]:.2f} s"
                                                  for label, values in figures.items()),
                  flush=True)
    print(f"{'':<12}{'median':>8}  {'min':>6}  {'max':>6}  crates  downloaded")
    for label, values in figures.items():
        packages, downloaded = counts[label]
        print(f"{label:<12}{statistics.median(values):>7.2f}s  {min(values):>5.2f}s  "
              f"{max(values):>5.2f}s  {packages:>6}  {downloaded:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
