"""Builds per minute a docker pool sustains on one Docker engine and on two: the
example project forced for every chosen target at once, round after round.

    tools/bootstrap --test
    farm images build                  # the target images, once
    .venv/bin/python benchmarks/engine_throughput.py [--targets N] [--rounds N] [--workers N]

The second engine is a dockerd of its own on this machine (TLS on loopback, its own
data root, as the tests start it), fed from a local registry; its images are pulled
before the clock starts. Both engines share this machine's cores, so the figures show
what spreading a pool over engines costs or saves in the farm, not the capacity a
second machine adds. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rustfarm.farmfile.pool_kinds import LOCAL_DOCKER_ENGINE  # noqa: E402
from rustfarm.images.engine import local_image  # noqa: E402
from rustfarm.plumbing import connect  # noqa: E402
from rustfarm.images.recipes import current_catalog  # noqa: E402
from rustfarm.images.registry import push_images  # noqa: E402
from rustfarm.progress import say  # noqa: E402
from rustfarm.targets import target_table  # noqa: E402
from tests.support.farm import EXAMPLE, RunningFarm  # noqa: E402
from tests.support.registry import LocalRegistry, ensure_registry_binary  # noqa: E402
from tests.support.second_engine import SecondEngine  # noqa: E402


def built_targets(wanted: int) -> list[str]:
    """The first ``wanted`` targets (farm.yaml's order) whose current image is built."""
    catalog = current_catalog()
    client = connect()
    try:
        built = [t.triple for t in target_table()
                 if local_image(client, catalog.reference(t.triple)) is not None]
    finally:
        client.close()
    if not built:
        raise SystemExit("no target image is built: run farm images build first")
    return built[:wanted]


def farm_yaml(targets: list[str], workers: int, engines: str, registry: str) -> str:
    catalog = current_catalog()
    lines = "".join(f"  {t}: {{pool: bench, image: {catalog.reference(t)}}}\n" for t in targets)
    return (f"schedule: {{nightly: false}}\n"
            f"workers:\n  bench:\n    kind: docker\n    count: {workers}\n"
            f"    memory: 2g\n    image_registry: {registry}\n    docker_hosts:\n{engines}"
            f"targets:\n{lines}"
            f"projects:\n  hello: {{source: {EXAMPLE}, binaries: [hello], test: false}}\n")


def one_round(farm: RunningFarm, targets: list[str]) -> tuple[float, int, dict[str, int]]:
    """Force every target at once; seconds until the last build ended, failed builds,
    and builds per engine."""
    started = time.monotonic()
    requests_ = farm.force("force-hello", targets=targets)
    failed, engines = 0, {}
    for brid in requests_.values():
        build = farm.wait_for_build(brid, timeout=1800)
        failed += build["results"] != 0
        props = farm.api(f"builds/{build['buildid']}", property="docker_engine")
        engine = props["builds"][0]["properties"].get("docker_engine", ["?"])[0]
        engines[engine] = engines.get(engine, 0) + 1
    return time.monotonic() - started, failed, engines


def measure(farm: RunningFarm, targets: list[str], rounds: int) -> dict:
    farm.login()
    say(f"{farm.directory.name}: warm-up round ({len(targets)} builds, not counted)")
    one_round(farm, targets)
    times, failed, spread = [], 0, {}
    for number in range(1, rounds + 1):
        seconds, bad, engines = one_round(farm, targets)
        times.append(seconds)
        failed += bad
        for engine, count in engines.items():
            spread[engine] = spread.get(engine, 0) + count
        say(f"{farm.directory.name}: round {number} of {rounds}: {len(targets)} builds in "
            f"{seconds:.1f} s")
    return {"times": times, "failed": failed, "spread": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100,
                        help="how many targets (default: every built one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="the pool's count")
    args = parser.parse_args()
    targets = built_targets(args.targets)
    catalog = current_catalog()
    ensure_registry_binary()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        registry = LocalRegistry(Path(tmp) / "registry").start()
        second = None
        try:
            client = connect()
            try:
                say(f"pushing {len(targets)} image(s) to the registry at {registry.address}")
                push_images(client, registry.address, targets)
            finally:
                client.close()
            second = SecondEngine(reaches=(registry.port,)).start()
            pull_started = time.monotonic()
            for number, triple in enumerate(targets, 1):
                reference = catalog.reference(triple)
                remote = f"{registry.address}/{reference}"
                pulled = second.docker("pull", "-q", remote, timeout=900)
                if pulled.returncode != 0:
                    raise SystemExit(f"the second engine could not pull {remote}: "
                                     f"{pulled.stderr.strip()}")
                second.docker("tag", remote, reference)
                say(f"second engine: pulled {number} of {len(targets)} ({triple}), "
                    f"{time.monotonic() - pull_started:.0f} s")
            local = f"      - {LOCAL_DOCKER_ENGINE}\n"
            both = local + f'      - {{url: "{second.url}", tls: {second.client_tls}}}\n'
            for label, engines in (("one engine", local), ("two engines", both)):
                farm = RunningFarm(Path(tmp) / label.replace(" ", "-"),
                                   farm_yaml(targets, args.workers, engines, registry.address))
                try:
                    farm.up()
                    figures[label] = measure(farm, targets, args.rounds)
                finally:
                    farm.down()
        finally:
            if second is not None:
                second.remove()
            registry.stop()
    print(f"example project, {len(targets)} target(s) forced at once per round, docker pool "
          f"of {args.workers} workers, {args.rounds} round(s) after one warm-up; both engines "
          f"on this machine ({len(targets)} targets: {', '.join(targets)})")
    print(f"{'':14}{'builds/min':>11}{'round median':>14}{'failed':>8}  builds per engine")
    for label, found in figures.items():
        builds = len(targets) * len(found["times"])
        rate = builds / (sum(found["times"]) / 60)
        spread = ", ".join(f"{engine}: {count}" for engine, count in found["spread"].items())
        print(f"{label:14}{rate:>11.1f}{statistics.median(found['times']):>13.1f}s"
              f"{found['failed']:>8}  {spread}")


if __name__ == "__main__":
    main()
