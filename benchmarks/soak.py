"""Reliability under faults: no build request is lost.

    .venv/bin/python benchmarks/soak.py [--builds 100] [--kill-every 20]

Queues the builds over 3 projects and 10 targets on a docker pool of 2, kills a
random running build container every --kill-every seconds, and restarts the
master (`farm down`, `farm up`) once half of the requests have ended. When
every request has ended it stops the farm and prints: builds requested,
succeeded, retried (builds that ended RETRY and ran again), lost (requests that
never got a finished build: must be 0), containers and anonymous volumes left
(must be 0), and the master's resident memory before and after.

The worker images must be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.container_builds import Farm  # noqa: E402
from rustfarm.images.recipes import current_catalog  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "crates"
FARM = str(Path(sys.executable).parent / "farm")
TARGETS = [
    "mips-unknown-linux-musl", "mipsel-unknown-linux-gnu", "mips64el-unknown-linux-gnuabi64",
    "armv7-unknown-linux-gnueabihf", "aarch64-unknown-linux-musl", "x86_64-unknown-linux-gnu",
    "i686-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu", "s390x-unknown-linux-gnu",
    "wasm32-unknown-unknown",
]
PROJECTS = {"arch": ("hello-arch", "hello-arch"), "order": ("byte-order", "byte-order"),
            "escape": ("escape", "escape")}


def farm_body() -> str:
    catalog = current_catalog()
    targets = "".join(f"  {t}: {{pool: soak, image: \"{catalog.reference(t)}\"}}\n"
                      for t in TARGETS)
    projects = "".join(f"  {name}: {{source: {FIXTURES / crate}, binaries: [{binary}],"
                       f" test: false, profile: dev}}\n"
                       for name, (crate, binary) in PROJECTS.items())
    return (f"workers:\n  soak: {{kind: docker, count: 2, memory: 2g}}\n"
            f"targets:\n{targets}projects:\n{projects}")


def rss_mb(farm: Farm) -> float:
    pid = (farm.root / ".farm" / "master" / "twistd.pid").read_text().strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def containers(prefix: str = "buildbot-soak-") -> list[str]:
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"],
                           capture_output=True, text=True).stdout.split()
    return [name for name in names if name.startswith(prefix)]


def anonymous_volumes() -> set[str]:
    listed = subprocess.run(["docker", "volume", "ls", "-q", "--filter", "dangling=true"],
                            capture_output=True, text=True).stdout.split()
    return {name for name in listed if not name.startswith("rustfarm-")}


def login(farm: Farm) -> None:
    password = (farm.root / ".farm" / "secrets" / "ui-admin").read_text().strip()
    farm.session.cookies.clear()
    farm.session.get(f"{farm.url}auth/login", auth=("admin", password), timeout=30)


def force(farm: Farm, project: str, target: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": {"targets": [target]}}
    reply = farm.session.post(f"{farm.url}api/v2/forceschedulers/force-{project}", json=body,
                              timeout=60, headers={"Accept": "application/json"})
    reply.raise_for_status()
    return next(iter(reply.json()["result"][1].values()))


def builds_of(farm: Farm, brid: int) -> list[dict]:
    reply = farm.session.get(f"{farm.url}api/v2/builds", params={"buildrequestid": brid},
                             timeout=60, headers={"Accept": "application/json"})
    reply.raise_for_status()
    return reply.json()["builds"]


def ended(builds: list[dict]) -> bool:
    return bool(builds) and builds[-1]["complete"] and builds[-1]["results"] != 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    volumes_before = anonymous_volumes()
    with tempfile.TemporaryDirectory(prefix="rustfarm-soak-") as scratch:
        farm = Farm(Path(scratch), farm_body())
        farm.__enter__()
        try:
            rss_before = rss_mb(farm)
            pairs = [(p, t) for p in PROJECTS for t in TARGETS]
            requests = [force(farm, *pairs[i % len(pairs)]) for i in range(args.builds)]
            print(f"requested {len(requests)} builds over {len(PROJECTS)} projects and "
                  f"{len(TARGETS)} targets", flush=True)
            stop = threading.Event()
            kills = []

            def killer():
                while not stop.wait(args.kill_every):
                    running = containers()
                    if running:
                        victim = random.choice(running)
                        subprocess.run(["docker", "kill", victim], capture_output=True)
                        kills.append(victim)
                        print(f"  killed {victim}", flush=True)

            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            restarted = False
            deadline = time.monotonic() + args.timeout
            done: dict[int, list[dict]] = {}
            while len(done) < len(requests) and time.monotonic() < deadline:
                for brid in requests:
                    if brid not in done:
                        builds = builds_of(farm, brid)
                        if ended(builds):
                            done[brid] = builds
                if not restarted and len(done) >= len(requests) // 2:
                    print(f"  {len(done)} ended: restarting the master", flush=True)
                    subprocess.run([FARM, "--config", str(farm.config), "down"], check=True,
                                   capture_output=True)
                    subprocess.run([FARM, "--config", str(farm.config), "up", "--no-images"],
                                   check=True, capture_output=True)
                    login(farm)
                    restarted = True
                time.sleep(2)
            stop.set()
            thread.join()
            for brid in requests:
                if brid not in done:
                    done[brid] = builds_of(farm, brid)
            rss_after = rss_mb(farm)
        finally:
            farm.__exit__()
        left = containers()
        volumes_left = anonymous_volumes() - volumes_before
    finals = [builds[-1] if builds else None for builds in done.values()]
    succeeded = sum(1 for b in finals if b and b["results"] == 0)
    retried = sum(1 for builds in done.values() for b in builds if b["results"] == 5)
    lost = sum(1 for builds in done.values() if not ended(builds))
    other = len(requests) - succeeded - lost
    print(f"builds requested:       {len(requests)}")
    print(f"succeeded:              {succeeded}")
    print(f"ended otherwise:        {other} (a build's own failure, e.g. a test)")
    print(f"retried (RETRY builds): {retried} after {len(kills)} container kills and 1 master restart")
    print(f"lost:                   {lost}")
    print(f"containers left:        {len(left)} {' '.join(left)}")
    print(f"anonymous volumes left: {len(volumes_left)}")
    print(f"master RSS:             {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    return 0 if lost == 0 and not left and not volumes_left else 1


if __name__ == "__main__":
    sys.exit(main())
