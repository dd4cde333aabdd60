"""How long the AMI's boot program takes to start a worker: from starting
``ami/rustfarm-boot`` to its ``starting worker`` log line, and to the worker's first
line of output.

    flock /tmp/rustfarm-docker.lock .venv/bin/python benchmarks/ami_boot.py [--boots 7]

A boot is the fake instance of tests/ami/harness.py: a fake IMDSv2 with the
user-data, the tiny worker image pulled from a real local registry (removed
before every boot, so each one pulls it), power-off recorded instead of done.
Needs a Docker engine and Debian's docker-registry. Prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ami import harness  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402


def boot_once(image: str, workdir: Path, name: str) -> tuple[float, float]:
    """Seconds to the 'starting worker' line and to the worker's first output."""
    harness.remove_local_image(image)
    text = harness.user_data_text(image, "127.0.0.1", 9989, name, "pw-secret")
    begin = time.time()
    with harness.boot_instance(text, workdir=workdir) as boot:
        harness.wait_for(lambda: "tiny-worker: started" in boot.output, 60)
        running = time.time() - begin
        boot.wait(60)
        logged = next(t for t, call in zip(boot.logger.call_times(), boot.logger.calls())
                      if "starting worker" in call) - begin
    return logged, running


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boots", type=int, default=7, help="boots to time (default 7)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rustfarm-ami-boot-"))
    registry = LocalRegistry(tmp / "registry").start()
    try:
        image = harness.build_tiny_worker_image(registry.address, tmp / "busybox")
        logged, running = [], []
        for run in range(args.boots):
            print(f"boot {run + 1} of {args.boots}", file=sys.stderr, flush=True)
            first, second = boot_once(image, tmp / f"boot{run}", f"w{run}")
            logged.append(first)
            running.append(second)
        harness.remove_local_image(image)
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for what, times in (("'starting worker' logged", logged), ("worker running", running)):
        print(f"{what}: median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s ({len(times)} boots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
