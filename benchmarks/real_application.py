"""A real application built through the farm against a bare `docker run` of cargo.

    .venv/bin/python benchmarks/real_application.py [--target mipsel-unknown-linux-musl]
        [--runs 3]

benchmarks/fixtures/big-app (a web service with a command line: axum, tokio, clap,
serde, tracing, ... 196 packages from crates.io), built cold for --target:

1. through the farm (a docker pool of one worker, empty volumes): force to done, and
   the dependencies step's own time (its crates fetched into an empty crate store);
2. bare: `docker run --network none ... cargo build --release --offline --locked` in
   the same image, on an empty target volume, with the same crates already fetched
   (the farm's store mounted read-only, the same cargo configuration);
3. a second project with the same Cargo.lock, through the farm, after the first:
   its dependencies come from the pool's shared compile cache.

Each of --runs rounds does all three on a fresh farm; the medians are the figures.
Goals: the farm's cold build at most 1.1 times the bare one; the second project at
most 0.2 times the first. The worker images must be built (`farm images build`) and
crates.io reachable. Prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.container_builds import (Farm, cache_volume_name,  # noqa: E402
                                         compile_cache_volume, image_of, remove_volumes)
from rustfarm.cargo_lock import read_lock, store_config, toml_text  # noqa: E402
from rustfarm.workers.docker_volumes import CRATE_STORE_DIR  # noqa: E402

APP = REPO / "benchmarks" / "fixtures" / "big-app"
BARE = "rustfarm-bench-real-bare"


def seconds(build: dict) -> float:
    return build["complete_at"] - build["started_at"]


def step_seconds(farm: Farm, build: dict, name: str) -> float:
    step = next(s for s in farm.api(f"builds/{build['buildid']}/steps")["steps"]
                if s["name"] == name)
    return step["complete_at"] - step["started_at"]


def step_times(farm: Farm, build: dict) -> str:
    """Each step of the build that took a second or more, and its seconds."""
    steps = farm.api(f"builds/{build['buildid']}/steps")["steps"]
    return ", ".join(f"{s['name']} {s['complete_at'] - s['started_at']:.0f} s" for s in steps
                     if s["complete_at"] and s["complete_at"] - s["started_at"] >= 1)


def bare_build(app: Path, store: Path, triple: str, scratch: Path) -> float:
    """cargo in the target's image, offline, the farm's fetched crates as its source."""
    packages = read_lock((app / "Cargo.lock").read_text())
    view = scratch / "view"
    view.mkdir()
    for package in packages:
        if package.kind != "path":
            (view / f"{package.name}-{package.version}").symlink_to(
                f"{CRATE_STORE_DIR}/{package.store_key}")
    (scratch / "crates.toml").write_text(toml_text(store_config(packages, "/view")))
    subprocess.run(["chmod", "-R", "a+rX", str(scratch)], check=True)
    started = time.monotonic()
    # Not at /crates.toml: cargo takes a configuration file's grandparent for its root,
    # and panics on a file whose parent is /.
    command = ["docker", "run", "--rm", "--network", "none",
               "-v", f"{app}:/src:ro", "-v", f"{BARE}:/home/rustbuild/cache",
               "-v", f"{store}:{CRATE_STORE_DIR}:ro", "-v", f"{view}:/view:ro",
               "-v", f"{scratch / 'crates.toml'}:/bench/crates.toml:ro", "-w", "/src",
               "-e", "CARGO_TARGET_DIR=/home/rustbuild/cache/target",
               image_of(triple), "cargo", "build", "--release", "--offline", "--locked",
               "--config", "/bench/crates.toml", "--target", triple]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the bare build failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def one_round(triple: str) -> tuple[float, float, float]:
    """A fresh farm (empty crate store, volumes and compile cache): its cold build, the
    second project's and the bare build's seconds."""
    with tempfile.TemporaryDirectory(prefix="rustfarm-real-") as tmp:
        root = Path(tmp)
        app = root / "big-app"
        shutil.copytree(APP, app, ignore=shutil.ignore_patterns("target"))
        two = root / "big-two"
        shutil.copytree(APP, two, ignore=shutil.ignore_patterns("target"))
        for file in ("Cargo.toml", "Cargo.lock"):
            path = two / file
            path.write_text(path.read_text().replace('name = "big-app"', 'name = "big-two"'))
        volumes = [cache_volume_name("bench", name, triple) for name in ("app", "two")] \
            + [compile_cache_volume("bench", triple), BARE]
        remove_volumes(*volumes)
        (root / "farm").mkdir()
        farm = Farm(root / "farm", f"""\
workers:
  bench: {{kind: docker, count: 1, cpus: 2, memory: 6g, standby: 0}}
targets:
  {triple}: {{pool: bench, image: "{image_of(triple)}"}}
projects:
  app: {{source: {app}, test: false}}
  two: {{source: {two}, test: false}}
""")
        try:
            with farm:
                cold = farm.wait(farm.force("app", triple)[1])
                fetching = step_seconds(farm, cold, "dependencies")
                farm_cold = seconds(cold)
                print(f"farm, cold:        {farm_cold:7.1f} s (dependencies step "
                      f"{fetching:.1f} s, crates downloaded into an empty store)", flush=True)
                print(f"  its steps: {step_times(farm, cold)}", flush=True)
                second = farm.wait(farm.force("two", triple)[1])
                farm_second = seconds(second)
                counts = farm.api(f"builds/{second['buildid']}", property="compile_cache")
                cache = counts["builds"][0]["properties"].get("compile_cache", [{}])[0]
                print(f"second project:    {farm_second:7.1f} s ({cache.get('hits')} crates "
                      f"from the cache, {cache.get('misses')} compiled)", flush=True)
                bare = bare_build(app, root / "farm" / ".farm" / "crates", triple, root)
                print(f"bare docker run:   {bare:7.1f} s (the same crates, fetched)",
                      flush=True)
        finally:
            remove_volumes(*volumes)
    return farm_cold, farm_second, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="mipsel-unknown-linux-musl")
    parser.add_argument("--runs", type=int, default=3, help="rounds, each on a fresh farm")
    args = parser.parse_args()
    triple = args.target
    print(f"{datetime.now():%Y-%m-%d %H:%M} big-app for {triple}, {args.runs} rounds",
          flush=True)
    rounds = []
    for number in range(1, args.runs + 1):
        print(f"round {number}:", flush=True)
        rounds.append(one_round(triple))
    cold, second, bare = (statistics.median(column) for column in zip(*rounds))
    ratios = [r[0] / r[2] for r in rounds]
    print(f"medians of {args.runs}: farm cold {cold:.1f} s, second project {second:.1f} s, "
          f"bare {bare:.1f} s")
    print(f"farm cold / bare:           {statistics.median(ratios):.2f}x median, each round "
          + ", ".join(f"{r:.2f}x" for r in ratios) + " (goal: at most 1.1x)")
    print(f"second project / first:     {statistics.median(r[1] / r[0] for r in rounds):.2f}x"
          " median (goal: at most 0.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
