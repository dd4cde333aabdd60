"""How long signing a target's release takes on the master (the sign step's work,
rustfarm/release_files.py): the SBOM of a real application's linked crates
(benchmarks/fixtures/big-app's Cargo.lock, every package linked), its provenance,
SHA256SUMS over a 5 MB archive and the signature. The goal: under 0.2 s a target.

    .venv/bin/python benchmarks/signing.py [--runs 20]

Prints the median and the slowest of --runs, and each part's median.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rustfarm.attestations import ReleaseFacts, Shipped, provenance, sbom  # noqa: E402
from rustfarm.cargo_lock import read_lock  # noqa: E402
from rustfarm.release_files import attest_target  # noqa: E402
from rustfarm.release_keys import ReleaseKeys  # noqa: E402
from rustfarm.state import StateDir  # noqa: E402

LOCK = REPO / "benchmarks" / "fixtures" / "big-app" / "Cargo.lock"
TRIPLE = "mipsel-unknown-linux-musl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    packages = read_lock(LOCK.read_text())
    linked = [f"{p.name}@{p.version}" for p in packages]
    archive = os.urandom(5 << 20)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        keys = ReleaseKeys(StateDir(root / "state"))
        keys.signing_key()
        facts = ReleaseFacts(
            project="big-app", target=TRIPLE, revision="a" * 40, repository="/srv/big-app",
            builder=f"big-app:{TRIPLE}", build_url="http://farm/#/builders/1/builds/1",
            farm_url="http://farm/", image=f"rustfarm/{TRIPLE}:1.96", image_digest="",
            toolchain="1.96.0", profile="release", cargo_arguments=("--target", TRIPLE),
            environment={}, started=time.time() - 60, finished=time.time(),
            archive=Shipped("big-app.tar.gz", hashlib.sha256(archive).hexdigest()),
            binaries=(Shipped("big-app", "0" * 64),))
        totals, sboms, provenances = [], [], []
        for run in range(args.runs):
            directory = root / "artifacts" / str(run)
            directory.mkdir(parents=True)
            (directory / "big-app.tar.gz").write_bytes(archive)
            (directory / "Cargo.lock").write_bytes(LOCK.read_bytes())
            began = time.perf_counter()
            attest_target(directory, facts, keys, None, linked)
            totals.append(time.perf_counter() - began)
            began = time.perf_counter()
            sbom(facts, packages, {})
            sboms.append(time.perf_counter() - began)
            began = time.perf_counter()
            provenance(facts)
            provenances.append(time.perf_counter() - began)
    print(f"{len(packages)} packages in the lock, {len(linked)} linked, 5 MB archive, "
          f"{args.runs} runs")
    print(f"sign a target: median {statistics.median(totals):.3f} s, "
          f"slowest {max(totals):.3f} s (goal: under 0.2 s)")
    print(f"  SBOM {statistics.median(sboms):.3f} s, provenance "
          f"{statistics.median(provenances):.4f} s")


if __name__ == "__main__":
    main()
