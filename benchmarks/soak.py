"""Reliability under faults: no build request is lost, and every build is its own
project's, however it started.

    .venv/bin/python benchmarks/soak.py [--builds 100] [--kill-every 20] [--pushes 3]

Three projects, each a git repository the farm polls, and 10 targets on a docker
pool of 2. Queues --builds forced builds; meanwhile pushes --pushes commits (each
builds its project for every target) and sets the nightly build for a minute
after the start (every project, every target); kills a random running build
container every --kill-every seconds, and restarts the master (`farm down`, `farm
up`) once half of the forced requests have ended. When every request has ended it
stops the farm and prints: requests by how they started, succeeded, retried
(builds that ended RETRY and ran again), lost (requests that never got a finished
build: must be 0), builds that used another project's volume (must be 0),
containers and anonymous volumes left (must be 0), and the master's resident
memory before and after.

The worker images must be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.container_builds import Farm  # noqa: E402
from rustfarm.build_records import RETRY, has_ended, newest  # noqa: E402
from rustfarm.images.recipes import current_catalog  # noqa: E402
from rustfarm.workers.docker_volumes import cache_volume_name  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "crates"
FARM = str(Path(sys.executable).parent / "farm")
TARGETS = [
    "mips-unknown-linux-musl", "mipsel-unknown-linux-gnu", "mips64el-unknown-linux-gnuabi64",
    "armv7-unknown-linux-gnueabihf", "aarch64-unknown-linux-musl", "x86_64-unknown-linux-gnu",
    "i686-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu", "s390x-unknown-linux-gnu",
    "wasm32-unknown-unknown",
]
PROJECTS = {"arch": "hello-arch", "order": "byte-order", "escape": "escape"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=soak@example.invalid", "-c",
                           "user.name=soak", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def repositories(root: Path, projects: dict[str, str] = PROJECTS) -> dict[str, Path]:
    """Each project's fixture as a bare repository (its source) and a clone to push from."""
    clones = {}
    for name, crate in projects.items():
        bare, clone = root / f"{name}.git", root / f"{name}-work"
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        shutil.copytree(FIXTURES / crate, clone, ignore=shutil.ignore_patterns("target"))
        git(clone, "init", "-q", "-b", "main")
        git(clone, "add", ".")
        git(clone, "commit", "-qm", "first")
        git(clone, "remote", "add", "origin", str(bare))
        git(clone, "push", "-q", "origin", "main")
        clones[name] = clone
    return clones


def push(clones: dict[str, Path], number: int) -> str:
    """Commit and push a change to a random project's repository; the project's name."""
    name = random.choice(list(clones))
    (clones[name] / "PUSHED").write_text(f"push {number}\n")
    git(clones[name], "add", "PUSHED")
    git(clones[name], "commit", "-qm", f"push {number}")
    git(clones[name], "push", "-q", "origin", "main")
    print(f"  pushed to {name}", flush=True)
    return name


def farm_body(root: Path) -> str:
    catalog = current_catalog()
    targets = "".join(f"  {t}: {{pool: soak, image: \"{catalog.reference(t)}\"}}\n"
                      for t in TARGETS)
    projects = "".join(f"  {name}: {{source: 'file://{root / name}.git', poll_interval: 5,"
                       f" test: false, profile: dev}}\n" for name in PROJECTS)
    return (f"workers:\n  soak: {{kind: docker, count: 2, memory: 2g}}\n"
            f"targets:\n{targets}projects:\n{projects}")


def nightly_in(seconds: float) -> str:
    soon = int(time.time() + seconds)
    at = time.localtime(soon + 60 - soon % 60)
    return f'"{at.tm_hour:02d}:{at.tm_min:02d}"'


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


def get(farm: Farm, path: str, **params) -> dict:
    reply = farm.session.get(f"{farm.url}api/v2/{path}", params=params, timeout=120,
                             headers={"Accept": "application/json"})
    reply.raise_for_status()
    return reply.json()


def ended(builds: list[dict]) -> bool:
    """Whether a request's newest build has ended for good."""
    return has_ended(newest(builds))


def how_started(scheduler: str) -> str:
    return scheduler.split("-", 1)[0] if scheduler else "?"


def every_request(farm: Farm) -> dict[int, list[dict]]:
    """Every build request, with its builds."""
    builds: dict[int, list[dict]] = {r["buildrequestid"]: []
                                     for r in get(farm, "buildrequests")["buildrequests"]}
    for build in get(farm, "builds", property=["cache_volume", "farm_project", "target"])["builds"]:
        builds.setdefault(build["buildrequestid"], []).append(build)
    return builds


def origins(farm: Farm) -> dict[int, str]:
    """How each build request started (force, commits, nightly): its buildset's scheduler."""
    started = {}
    for buildset in get(farm, "buildsets")["buildsets"]:
        props = get(farm, f"buildsets/{buildset['bsid']}/properties")["properties"]
        scheduler = props[0].get("scheduler", [""])[0] if props else ""
        for request in get(farm, "buildrequests", buildsetid=buildset["bsid"])["buildrequests"]:
            started[request["buildrequestid"]] = how_started(scheduler)
    return started


def foreign_volumes(builds: dict[int, list[dict]]) -> int:
    """Builds whose cache volume is not their own project's."""
    wrong = 0
    for build in (b for runs in builds.values() for b in runs):
        props = build.get("properties", {})
        if "cache_volume" not in props:
            continue       # a build that never got a container
        project, target = props["farm_project"][0], props["target"][0]
        wrong += props["cache_volume"][0] != cache_volume_name("bench", project, target,
                                                               props["image"][0])
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    volumes_before = anonymous_volumes()
    with tempfile.TemporaryDirectory(prefix="rustfarm-soak-") as scratch:
        root = Path(scratch)
        clones = repositories(root)
        (root / "farm").mkdir()
        farm = Farm(root / "farm", farm_body(root), nightly=nightly_in(90))
        farm.__enter__()
        try:
            rss_before = rss_mb(farm)
            pairs = [(p, t) for p in PROJECTS for t in TARGETS]
            forced = [force(farm, *pairs[i % len(pairs)]) for i in range(args.builds)]
            print(f"requested {len(forced)} builds over {len(PROJECTS)} projects and "
                  f"{len(TARGETS)} targets; {args.pushes} pushes and a nightly run to come",
                  flush=True)
            stop = threading.Event()
            kills, pushed = [], []

            def killer():
                while not stop.wait(args.kill_every):
                    running = containers()
                    if running:
                        victim = random.choice(running)
                        subprocess.run(["docker", "kill", victim], capture_output=True)
                        kills.append(victim)
                        print(f"  killed {victim}", flush=True)

            def pusher():
                for number in range(args.pushes):
                    if stop.wait(30):
                        return
                    pushed.append(push(clones, number))

            threads = [threading.Thread(target=killer, daemon=True),
                       threading.Thread(target=pusher, daemon=True)]
            for thread in threads:
                thread.start()
            restarted = False
            deadline = time.monotonic() + args.timeout
            expected = args.builds + len(TARGETS) * (args.pushes + len(PROJECTS))
            while time.monotonic() < deadline:
                builds = every_request(farm)
                done = [brid for brid, runs in builds.items() if ended(runs)]
                if not restarted and sum(1 for b in forced if b in done) >= len(forced) // 2:
                    print(f"  {len(done)} ended: restarting the master", flush=True)
                    subprocess.run([FARM, "--config", str(farm.config), "down"], check=True,
                                   capture_output=True)
                    subprocess.run([FARM, "--config", str(farm.config), "up", "--no-images"],
                                   check=True, capture_output=True)
                    login(farm)
                    restarted = True
                if len(builds) >= expected and len(done) == len(builds):
                    break
                time.sleep(5)
            stop.set()
            for thread in threads:
                thread.join()
            builds, started = every_request(farm), origins(farm)
            rss_after = rss_mb(farm)
        finally:
            farm.__exit__()
        left = containers()
        volumes_left = anonymous_volumes() - volumes_before
    finals = {brid: runs[-1] for brid, runs in builds.items() if runs}
    succeeded = sum(1 for b in finals.values() if b["results"] == 0)
    retried = sum(1 for runs in builds.values() for b in runs if b["results"] == RETRY)
    lost = sum(1 for runs in builds.values() if not ended(runs))
    wrong = foreign_volumes(builds)
    by_origin = Counter(started.values())
    print(f"requests:               {len(started)} (forced {by_origin['force']}, pushed "
          f"{by_origin['commits']}, nightly {by_origin['nightly']}; expected {expected})")
    print(f"succeeded:              {succeeded}")
    print(f"ended otherwise:        {len(started) - succeeded - lost} (a build's own failure)")
    print(f"retried (RETRY builds): {retried} after {len(kills)} container kills and 1 master restart")
    print(f"lost:                   {lost}")
    print(f"another project's volume: {wrong}")
    print(f"containers left:        {len(left)} {' '.join(left)}")
    print(f"anonymous volumes left: {len(volumes_left)}")
    print(f"master RSS:             {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    return 0 if lost == 0 and wrong == 0 and not left and not volumes_left \
        and len(started) >= expected else 1


if __name__ == "__main__":
    sys.exit(main())
