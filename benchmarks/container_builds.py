"""Container builds measured against the alternatives, on this machine's Docker engine.

Longer than 350 lines because it is one measurement run as one script: the farm it
makes, the bare builds it compares with and what it prints read best top to bottom.

    .venv/bin/python benchmarks/container_builds.py [--runs N]

1. Container overhead: force request to first build step, with a fresh container
   per build (docker pool), started for the build or already waiting for it (the
   pool's standby container, started after the builder's last build), against an
   already-running local worker.
2. The crate with dependencies (tests/fixtures/crates/deps-demo) built for mipsel
   through the farm, cold (empty volumes: the project's and the compile cache) and
   warm (after a one-line change), each the median of N,
   against a bare `docker run ... cargo build` in the same image, cold and warm,
   and the same bare build through sccache on an empty cache (what sccache, the
   alternative to the farm's crate cache, costs by itself).
3. A second project with the same dependencies built cold for the same target,
   after the first: its dependencies come from the pool's shared compile cache
   (its hits and misses are printed with it).
4. A crate over a chain of two slow path dependencies, cold, through the farm and
   bare, and bare through sccache alone, which hides from cargo that a library's
   metadata is written (its pipelining) until the library is compiled.

The worker images must be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.crates import chain_crate, renamed_copy  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "crates"
FARM = str(Path(sys.executable).parent / "farm")
MIPSEL = "mipsel-unknown-linux-gnu"
HOST = "x86_64-unknown-linux-gnu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Farm:
    def __init__(self, root: Path, body: str, nightly: str = "false"):
        self.root = root
        self.www = free_port()
        self.url = f"http://127.0.0.1:{self.www}/"
        self.config = root / "farm.yaml"
        self.config.write_text(f"farm: {{name: bench, worker_port: {free_port()}}}\n"
                               f"www: {{port: {self.www}, users: [admin]}}\n"
                               f"schedule: {{nightly: {nightly}}}\n" + body)
        self.session = requests.Session()

    def __enter__(self) -> "Farm":
        started = subprocess.run([FARM, "--config", str(self.config), "up"],
                                 capture_output=True, text=True)
        if started.returncode != 0:
            raise SystemExit(f"farm up failed:\n{started.stdout}{started.stderr}")
        password = (self.root / ".farm" / "secrets" / "ui-admin").read_text().strip()
        self.session.get(f"{self.url}auth/login", auth=("admin", password), timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run([FARM, "--config", str(self.config), "down"], capture_output=True)

    def api(self, path: str, **params) -> dict:
        return self.session.get(f"{self.url}api/v2/{path}", params=params, timeout=30).json()

    def force(self, project: str, target: str) -> tuple[float, int]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "force",
                "params": {"targets": [target]}}
        start = time.time()
        reply = self.session.post(f"{self.url}api/v2/forceschedulers/force-{project}",
                                  json=body, timeout=30)
        reply.raise_for_status()
        [brid] = reply.json()["result"][1].values()
        return start, brid

    def first_step_latency(self, project: str, target: str) -> float:
        """Seconds from the force request until the build's first real step started
        (the snapshot step's start in the master's log)."""
        start, brid = self.force(project, target)
        build = self.wait(brid)
        began = self.log_name(build)
        lines = iter(self.log_lines())
        next(at for at, text in lines if began in text and ".. pinging the worker" in text)
        return next(at for at, text in lines if "acquireLocks(step SnapshotSource(" in text) \
            - start

    def build_time(self, project: str, target: str) -> tuple[float, float]:
        """(force -> build done, cargo's own time for the build) in seconds."""
        start, brid = self.force(project, target)
        build = self.wait(brid)
        total = self.finished_at(build) - start
        steps = self.api(f"builds/{build['buildid']}/steps")["steps"]
        [cargo] = [s for s in steps if s["name"] == "cargo build"]
        logs = self.api(f"steps/{cargo['stepid']}/logs")["logs"]
        [stdio] = [log for log in logs if log["slug"] == "stdio"]
        text = self.session.get(f"{self.url}api/v2/logs/{stdio['logid']}/raw", timeout=30).text
        # Cargo's own time ("Finished ... in 13.68s"); the step's times are whole seconds.
        took = re.search(r"Finished .* in (\d+\.\d+)s$", text, re.MULTILINE)
        return total, float(took.group(1)) if took else cargo["complete_at"] - cargo["started_at"]

    def wait_for_standby(self, worker: str = "dk-1", timeout: float = 60) -> None:
        """Until the container started after the last build has connected (a user's
        next build, seconds later, finds it waiting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [found] = self.api("workers", name=worker)["workers"]
            if found["connected_to"]:
                return
            time.sleep(0.2)
        raise SystemExit(f"no standby container of {worker} connected within {timeout} s")

    def compile_cache_counts(self, project: str) -> dict:
        """The compile cache's counts of the project's newest build (its compile_cache
        property)."""
        [builder] = [b for b in self.api("builders")["builders"]
                     if b["name"].startswith(f"{project}:")]
        build = self.api(f"builders/{builder['builderid']}/builds", order="-number",
                         limit=1, property="compile_cache")["builds"][0]
        return build["properties"].get("compile_cache", [None])[0]

    def log_name(self, build: dict) -> str:
        """How the master's log names ``build``."""
        builder = self.api(f"builders/{build['builderid']}")["builders"][0]["name"]
        return f"<Build {builder} number:{build['number']} results:"

    def log_lines(self) -> list[tuple[float, str]]:
        """The master's log, each line with its time (to the microsecond)."""
        lines = []
        for line in (self.root / ".farm" / "master" / "twistd.log").read_text().splitlines():
            stamp = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ", line)
            if stamp:
                when = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                lines.append((when, line[stamp.end():]))
        return lines

    def finished_at(self, build: dict) -> float:
        """When the master finished ``build``, from its log. Times come from the log,
        not from polling: the REST API is polled twice a second, as asking 20 times a
        second loaded the master enough to slow a cold cargo build by 5% and a
        container's start too."""
        finished = self.log_name(build)
        for at, text in self.log_lines():
            if finished in text and text.endswith(": build finished"):
                return at
        raise SystemExit(f"the master's log does not say that build {build['buildid']} finished")

    def wait(self, brid: int) -> dict:
        while True:
            builds = self.api("builds", buildrequestid=brid)["builds"]
            if builds and builds[-1]["complete"] and builds[-1]["results"] != 5:
                if builds[-1]["results"] != 0:
                    steps = self.api(f"builds/{builds[-1]['buildid']}/steps")["steps"]
                    failed = "; ".join(f"{s['name']}: {s['state_string']}" for s in steps
                                       if s["results"] not in (0, 3, None))
                    for step in (s for s in steps if s["results"] not in (0, 3, None)):
                        for log in self.api(f"steps/{step['stepid']}/logs")["logs"]:
                            text = self.session.get(f"{self.url}api/v2/logs/{log['logid']}/raw",
                                                    timeout=30).text
                            print(f"--- {step['name']}, {log['name']} (its end):\n"
                                  + text[-2000:], file=sys.stderr)
                    raise SystemExit(f"build failed ({failed}): {self.url}#/builders/"
                                     f"{builds[-1]['builderid']}/builds/{builds[-1]['number']}")
                return builds[-1]
            time.sleep(0.5)


def cache_volume_name(farm: str, project: str, target: str) -> str:
    from rustfarm.workers.docker_volumes import cache_volume_name as name
    return name(farm, project, target, image_of(target))


def compile_cache_volume(farm: str, triple: str) -> str:
    from rustfarm.workers.docker_volumes import compile_cache_volume_name
    return compile_cache_volume_name(farm, image_of(triple), triple)


def image_of(triple: str) -> str:
    from rustfarm.images.recipes import current_reference
    return current_reference(triple)


def touch_main(source: Path) -> None:
    main = source / "src" / "main.rs"
    main.write_text(main.read_text() + f"\n// edited {time.time()}\n")


def median(times: list):
    """The median of build times (by their first figure, where a build gives several)."""
    return sorted(times, key=lambda t: t[0] if isinstance(t, tuple) else t)[len(times) // 2]


def median_warm(build, source: Path, runs: int):
    """The median of ``runs`` warm rebuilds, each after a one-line change to main.rs."""
    times = []
    for _ in range(runs):
        touch_main(source)
        times.append(build())
    return median(times)


# The bare builds' volumes: their target directories (and sccache's cache).
BARE, SCCACHE = "rustfarm-bench-bare", "rustfarm-bench-bare-sccache"


def remove_volumes(*volumes: str) -> None:
    """Remove the volumes, once the containers that used them are gone."""
    for _ in range(300):
        if subprocess.run(["docker", "volume", "rm", "-f", *volumes],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"volumes still in use: {' '.join(volumes)}")


def bare_docker_build(source: Path, volume: str, sccache: bool = False) -> float:
    """``docker run ... cargo build`` in the target's image (``--locked`` where the
    crate has a Cargo.lock); with ``sccache``, through sccache on a cache in the same
    volume (empty when the volume is new)."""
    wrapper = ["-e", "RUSTC_WRAPPER=sccache", "-e", "SCCACHE_DIR=/home/rustbuild/cache/sccache",
               "-e", "SCCACHE_IDLE_TIMEOUT=0"] if sccache else []
    start = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--network", "none",
                    "-v", f"{source}:/src", "-v", f"{volume}:/home/rustbuild/cache",
                    "-w", "/src", "-e", "CARGO_TARGET_DIR=/home/rustbuild/cache/target",
                    *wrapper, image_of(MIPSEL), "cargo", "build", "--release",
                    *(["--locked"] if (source / "Cargo.lock").exists() else []),
                    "--target", MIPSEL], check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        root = Path(tmp)
        deps = root / "deps-demo"
        shutil.copytree(FIXTURES / "deps-demo", deps, ignore=shutil.ignore_patterns("target"))
        subprocess.run(["chmod", "-R", "a+rwX", str(deps)], check=True)
        two = renamed_copy("deps-demo", root, "deps-two")    # same dependencies
        chain = chain_crate(root / "chain", "chain")
        subprocess.run(["chmod", "-R", "a+rwX", str(chain)], check=True)
        caches = [cache_volume_name("bench", name, MIPSEL)
                  for name in ("box", "deps", "deps-two", "chain")] \
            + [compile_cache_volume("bench", MIPSEL)]
        remove_volumes(*caches)
        local_project = (f"  local: {{source: {FIXTURES / 'hello-arch'}, targets: [{HOST}], "
                         "binaries: [hello-arch], test: false}\n")
        projects = f"""\
  box: {{source: {FIXTURES / 'hello-arch'}, targets: [{MIPSEL}], binaries: [hello-arch], test: false}}
  deps: {{source: {deps}, targets: [{MIPSEL}], binaries: [deps-demo], test: false}}
  deps-two: {{source: {two}, targets: [{MIPSEL}], binaries: [deps-two], test: false}}
  chain: {{source: {chain}, targets: [{MIPSEL}], binaries: [chain], test: false}}
"""
        # Without standby containers: every build's container is started for it, and
        # nothing holds a volume that a cold build removes first.
        with Farm(root, f"""\
workers:
  local: {{kind: local, count: 1}}
  dk: {{kind: docker, count: 1, standby: 0}}
targets:
  {HOST}: {{pool: local}}
  {MIPSEL}: {{pool: dk, image: "{image_of(MIPSEL)}"}}
projects:
""" + local_project + projects) as farm:
            local = [farm.first_step_latency("local", HOST) for _ in range(args.runs)]
            boxed = [farm.first_step_latency("box", MIPSEL) for _ in range(args.runs)]
            # Cold builds, one of each kind in turn (the machine's load drifts):
            # through the farm with empty volumes, bare, and bare through sccache.
            colds = {"farm": [], "bare": [], "sccache": []}
            for _ in range(args.runs):
                remove_volumes(cache_volume_name("bench", "deps", MIPSEL),
                               compile_cache_volume("bench", MIPSEL))
                colds["farm"].append(farm.build_time("deps", MIPSEL))
                remove_volumes(BARE)
                colds["bare"].append(bare_docker_build(deps, BARE))
                remove_volumes(SCCACHE)
                colds["sccache"].append(bare_docker_build(deps, SCCACHE, sccache=True))
            farm_cold, bare_cold, sccache_cold = (median(colds[kind])
                                                  for kind in ("farm", "bare", "sccache"))
            # The second project finds what the last cold build put in the cache.
            second_cold = farm.build_time("deps-two", MIPSEL)
            second_counts = farm.compile_cache_counts("deps-two")
            chain_farm = farm.build_time("chain", MIPSEL)
        # The pool's default: after a build, a container waits for the builder's next.
        with Farm(root, f"""\
workers:
  dk: {{kind: docker, count: 1}}
targets:
  {MIPSEL}: {{pool: dk, image: "{image_of(MIPSEL)}"}}
projects:
""" + projects) as farm:
            farm.first_step_latency("box", MIPSEL)
            standby = []
            for _ in range(args.runs):
                farm.wait_for_standby()
                standby.append(farm.first_step_latency("box", MIPSEL))

            def warm_build():
                farm.wait_for_standby()
                return farm.build_time("deps", MIPSEL)
            farm.build_time("deps", MIPSEL)             # this farm's first: no standby yet
            farm_warm = median_warm(warm_build, deps, args.runs)
        bare_warm = median_warm(lambda: bare_docker_build(deps, BARE), deps, args.runs)
        sccache_warm = median_warm(lambda: bare_docker_build(deps, SCCACHE, sccache=True), deps,
                                   args.runs)
        remove_volumes(BARE, SCCACHE)
        chain_bare = bare_docker_build(chain, BARE)
        chain_sccache = bare_docker_build(chain, SCCACHE, sccache=True)
        remove_volumes(BARE, SCCACHE, *caches)

    print(f"force request -> first step, median of {args.runs}:")
    print(f"  local worker (already running)   {statistics.median(local):6.2f} s")
    print(f"  fresh container, started for it  {statistics.median(boxed):6.2f} s"
          f"  ({statistics.median(boxed) - statistics.median(local):+.2f} s)")
    print(f"  fresh container, standing by     {statistics.median(standby):6.2f} s"
          f"  ({statistics.median(standby) - statistics.median(local):+.2f} s)")
    print(f"deps-demo (regex, serde_json) for {MIPSEL}, release (median of {args.runs} each):")
    print(f"  {'':34}{'cold':>9}{'warm':>9}{'warm/cold':>11}")
    print(f"  {'farm: force -> build done':34}{farm_cold[0]:8.2f}s{farm_warm[0]:8.2f}s"
          f"{farm_warm[0] / farm_cold[0]:10.2f}x")
    print(f"  {'farm: cargo (its own figure)':34}{farm_cold[1]:8.2f}s{farm_warm[1]:8.2f}s"
          f"{farm_warm[1] / farm_cold[1]:10.2f}x")
    print(f"  {'bare docker run cargo build':34}{bare_cold:8.2f}s{bare_warm:8.2f}s"
          f"{bare_warm / bare_cold:10.2f}x")
    print(f"  {'bare, through sccache (empty)':34}{sccache_cold:8.2f}s{sccache_warm:8.2f}s"
          f"{sccache_warm / sccache_cold:10.2f}x")
    print(f"  sccache alone, outside the farm: cold {sccache_cold / bare_cold:.2f}x bare, "
          f"warm {sccache_warm - bare_warm:+.2f} s")
    print(f"  farm / bare: cold {farm_cold[0] / bare_cold:.2f}x, warm {farm_warm[0] / bare_warm:.2f}x"
          f" (warm: {farm_warm[0] - bare_warm:+.2f} s)")
    print("a second project with the same dependencies, cold, same target:")
    print(f"  {'farm: force -> build done':34}{second_cold[0]:8.2f}s"
          f"  ({second_cold[0] / farm_cold[0]:.2f}x the first project's cold build)")
    print(f"  {'farm: cargo (its own figure)':34}{second_cold[1]:8.2f}s")
    print(f"  compile cache: {second_counts}")
    print("a crate over a chain of two slow libraries (cargo's pipelining), cold:")
    print(f"  {'bare docker run cargo build':34}{chain_bare:8.2f}s")
    print(f"  {'bare, through sccache (empty)':34}{chain_sccache:8.2f}s"
          f"  ({chain_sccache / chain_bare:.2f}x bare)")
    print(f"  {'farm: force -> build done':34}{chain_farm[0]:8.2f}s"
          f"  ({chain_farm[0] / chain_bare:.2f}x bare)")
    overhead = statistics.median(standby) - statistics.median(local)
    goals = [
        ("fresh container (standing by): force to first step at most 0.5 s over a running"
         " local worker", f"{overhead:+.2f} s", overhead <= 0.5),
        ("warm rebuild: force to done at most the bare container's warm time + 1.0 s",
         f"{farm_warm[0] - bare_warm:+.2f} s", farm_warm[0] <= bare_warm + 1.0),
        ("cold build: at most 1.1 times the bare container's",
         f"{farm_cold[0] / bare_cold:.2f}x", farm_cold[0] <= 1.1 * bare_cold),
        ("second project, same dependencies: none compiled, at most half the first's cold time",
         f"{second_cold[0] / farm_cold[0]:.2f}x, {second_counts and second_counts['misses']} "
         "compiled", bool(second_counts) and second_counts["misses"] == 0
         and second_cold[0] <= farm_cold[0] / 2),
    ]
    print("goals:")
    for goal, figure, met in goals:
        print(f"  {'met    ' if met else 'not met'}  {figure:>18}  {goal}")


if __name__ == "__main__":
    main()
