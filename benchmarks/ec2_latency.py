"""Force request to first build step through the EC2 path, against a docker pool,
with 1, 2 and 4 builds waiting at once.

    .venv/bin/python benchmarks/ec2_latency.py

The EC2 path is the one the tests use: moto's server as EC2, instances played
on this machine by the real AMI boot script (IMDSv2 user-data, image pulled
from a real local registry, worker container started), so the figures show the
farm's own overhead plus a local pull, not a real instance's boot time (add
about 30-60 s for EC2 to start an instance). Needs the worker images
(`farm images build`) and Debian's docker-registry. Prints figures only.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ec2.player import InstancePlayer  # noqa: E402
from tests.support.farm import RunningFarm  # noqa: E402
from tests.support.moto_server import MotoEc2, aws_env  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

HOST = "x86_64-unknown-linux-gnu"
FIXTURE = REPO / "tests" / "fixtures" / "crates" / "hello-arch"
WAITING = (1, 2, 4)


def first_steps(farm: RunningFarm, count: int) -> list[float]:
    """Force ``count`` builds at once; seconds from the request to each first step."""
    farm.login()
    start = time.monotonic()
    brids = [farm.force("force-arch")["arch:" + HOST] for _ in range(count)]
    firsts: dict[int, float] = {}
    while len(firsts) < count:
        for brid in brids:
            if brid in firsts:
                continue
            builds = farm.api("builds", buildrequestid=brid)["builds"]
            if builds:
                steps = farm.steps(builds[-1])
                if any(s["name"] == "snapshot" and s["started_at"] for s in steps):
                    firsts[brid] = time.monotonic() - start
        time.sleep(0.1)
    for brid in brids:
        farm.wait_for_build(brid, timeout=900)
    return sorted(firsts.values())


def project_yaml(pool: str, image: str, extra: str = "") -> str:
    return f"""\
schedule: {{nightly: false}}
workers:
  {pool}
targets:
  {HOST}: {{pool: bench, runner: native, image: "{image}"}}
projects:
  arch: {{source: {FIXTURE}, binaries: [hello-arch], test: false}}
{extra}"""


def main() -> None:
    from rustfarm.images.recipes import current_reference
    image = current_reference(HOST)
    results: dict[str, dict[int, list[float]]] = {"docker pool": {}, "ec2 pool": {}}
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        root = Path(tmp)
        farm = RunningFarm(root / "docker", project_yaml(
            "bench: {kind: docker, count: 4}", image))
        farm.up()
        try:
            for count in WAITING:
                results["docker pool"][count] = first_steps(farm, count)
        finally:
            farm.down()

        registry = LocalRegistry(root / "registry").start()
        moto = MotoEc2().start()
        try:
            remote = f"{registry.address}/{image}"
            subprocess.run(["docker", "tag", image, remote], check=True)
            subprocess.run(["docker", "push", "-q", remote], check=True, capture_output=True)
            subprocess.run(["docker", "rmi", remote], check=True, capture_output=True)
            with aws_env(moto.endpoint):
                ami = moto.client("us-east-1").describe_images(
                    Owners=["amazon"])["Images"][0]["ImageId"]
                farm = RunningFarm(root / "ec2", project_yaml(
                    f"bench: {{kind: ec2, region: us-east-1, ami: {ami}, instance_type: t3.micro,"
                    f" max_instances: 4, image_registry: \"{registry.address}\"}}", image))
                text = farm.config.read_text().replace(
                    "  name: test\n", "  name: test\n  master_address: 127.0.0.1\n"
                                      "  worker_host: 127.0.0.1\n")
                farm.config.write_text(text)
                with InstancePlayer(moto, "test", root / "instances"):
                    farm.up()
                    try:
                        for count in WAITING:
                            results["ec2 pool"][count] = first_steps(farm, count)
                    finally:
                        farm.down()
        finally:
            moto.stop()
            registry.stop()

    print("force request -> first build step (seconds), by builds waiting at once")
    print(f"{'':14}" + "".join(f"{f'{n} waiting':>22}" for n in WAITING))
    print(f"{'':14}" + "".join(f"{'median':>11}{'slowest':>11}" for _ in WAITING))
    for path, by_count in results.items():
        cells = "".join(f"{statistics.median(v):11.2f}{max(v):11.2f}"
                        for v in (by_count[n] for n in WAITING))
        print(f"{path:14}{cells}")


if __name__ == "__main__":
    main()
