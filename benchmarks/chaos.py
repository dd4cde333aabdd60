"""Chaos: build requests over two masters while the farm's parts are killed, and
nothing lost.

    .venv/bin/python benchmarks/chaos.py [--requests 1000] [--uploads 50] [--pushes 5]
        [--faults 12] [--timeout 7200] [--engines 1|2] [--no-full-store] [--keep]

A farm of two masters (its own PostgreSQL server and WAMP router, started by `farm
up`) and a docker pool of 4 workers per master over two engines, with four projects
(deps-demo's real crates among them) and ten targets. Over the run it queues
--requests build requests: forced builds through either master, --pushes commits
(the projects' pollers build each for every target) and --uploads compile uploads,
sent all at once by as many clients (on loopback), each following its job through
whichever master answers, as `farm compile` does. Meanwhile, at random moments and
--faults times in all, it does one of:

- kills a master with SIGKILL, then starts it again (`farm up`);
- kills the router, then `farm up`;
- kills PostgreSQL's postmaster with SIGKILL, then `farm up` (which starts it);
- kills a running build container;
- stops the second engine (chaos_faults.py), then starts it again;
- fills the artifact store until writes fail, then frees it.

A poller asks each master's REST API for its builders every 2 s and checks that every
answer decodes. When every request has ended (or --timeout) it stops the farm and
prints: requests queued, succeeded, failed (with the reasons their builds gave) and
lost (must be 0); duplicates, requests with more than one finished build (must be 0);
targets whose SHA256SUMS does not match their archive (must be 0); containers,
upload volumes and upload directories left (must be 0); each master's slowest REST
answer and the answers that did not decode (must be 0); the uploads' answers (never
500, and no job lost after its 202); each master's resident memory at the start and the end.

Not here, with a test of its own: a full compile cache or cache volume
(tests/docker/test_full_volumes.py).

The worker images must be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from buildbot.process.results import CANCELLED, RETRY

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.chaos_farm import (NAME, PROJECTS, containers,  # noqa: E402
                                   damaged_releases, farm_yaml, upload_volumes)
from benchmarks.chaos_faults import EngineOutage, StoreOutage  # noqa: E402
from benchmarks.chaos_uploads import send_and_follow  # noqa: E402
from benchmarks.compile import project_tar, remove_volumes  # noqa: E402
from benchmarks.soak import TARGETS, push, repositories  # noqa: E402
from rustfarm.cli.processes import read_pid  # noqa: E402

FARM = str(Path(sys.executable).parent / "farm")


class Chaos:
    def __init__(self, root: Path, args):
        self.root, self.args = root, args
        self.state = root / "farm" / ".farm"
        self.config = root / "farm" / "farm.yaml"
        self.lock = threading.Lock()
        self.faults: list[str] = []
        self.slowest: Counter = Counter()
        self.undecodable: Counter = Counter()
        self.unanswered: Counter = Counter()
        self.upload_answers: Counter = Counter()
        self.stop = threading.Event()
        self.engines = EngineOutage(root) if args.engines == 2 else None
        self.store = None if args.no_full_store else StoreOutage(root / "store")
        # Taken in turn, in an order of the run's own: every kind once faults allow.
        kinds = ["master", "router", "postgresql", "container"] \
            + ["engine"] * bool(self.engines) + ["store"] * bool(self.store)
        self.kinds = random.sample(kinds, len(kinds))

    def farm(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([FARM, "--config", str(self.config), *args], capture_output=True,
                              text=True, timeout=900)

    def master_pid(self, name: str) -> int | None:
        return read_pid(self.state / "masters" / name / "twistd.pid")

    def rss_mb(self) -> dict[str, float]:
        found = {}
        for name in self.urls:
            pid = self.master_pid(name)
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (OSError, TypeError):
                continue
            kb = next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmRSS:"))
            found[name] = (pid, kb / 1024)
        return found

    def login(self, url: str) -> requests.Session:
        session = requests.Session()
        password = (self.state / "secrets" / "ui-admin").read_text().strip()
        session.get(f"{url}auth/login", auth=("admin", password), timeout=30)
        return session

    def get(self, path: str, **params) -> dict:
        """From whichever master answers; while the database or both masters are down
        none does, for up to five minutes."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for url in self.urls.values():
                try:
                    reply = requests.get(f"{url}api/v2/{path}", params=params, timeout=120)
                    reply.raise_for_status()
                    return reply.json()
                except requests.RequestException:
                    continue
            time.sleep(5)
        raise SystemExit(f"no master answers {path}; faults so far: {'; '.join(self.faults)}")

    def force(self, project: str, target: str) -> None:
        for name in random.sample(list(self.urls), len(self.urls)):
            try:
                session = self.login(self.urls[name])
                reply = session.post(
                    f"{self.urls[name]}api/v2/forceschedulers/force-{project}", timeout=60,
                    json={"jsonrpc": "2.0", "id": 1, "method": "force",
                          "params": {"targets": [target]}})
                if reply.status_code == 200:
                    return
            except requests.RequestException:
                continue
            time.sleep(2)

    def poller(self) -> None:
        while not self.stop.wait(2):
            for name, url in self.urls.items():
                started = time.monotonic()
                try:
                    reply = requests.get(f"{url}api/v2/builders", timeout=30)
                    reply.json()
                    reply.raise_for_status()
                except requests.exceptions.ContentDecodingError:
                    self.undecodable[name] += 1
                except (requests.RequestException, ValueError):
                    self.unanswered[name] += 1
                    continue
                took = time.monotonic() - started
                self.slowest[name] = max(self.slowest[name], took)

    def fault(self) -> str:
        kind = self.kinds[len(self.faults) % len(self.kinds)]
        if kind in ("engine", "store"):
            return (self.engines if kind == "engine" else self.store).inject()
        if kind == "master":
            name = random.choice(list(self.urls))
            pid = self.master_pid(name)
            if pid:
                os.kill(pid, signal.SIGKILL)
            time.sleep(5)
            self.farm("up", "--no-images")
            return f"master: killed {name}, started it again"
        if kind == "router":
            pid = read_pid(self.state / "router" / "crossbar.pid")
            if pid:
                os.kill(pid, signal.SIGKILL)
            time.sleep(5)
            self.farm("up", "--no-images")
            return "router: killed, farm up"
        if kind == "postgresql":
            for pidfile in self.state.rglob("postmaster.pid"):
                # Its first line is the pid; more lines follow.
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
            time.sleep(5)
            self.farm("up", "--no-images")
            return "postgresql: killed, farm up"
        running = containers()
        if not running:
            return "container: none running"
        victim = random.choice(running)
        subprocess.run(["docker", "kill", victim], capture_output=True)
        return f"container: killed {victim}"

    def injector(self) -> None:
        while len(self.faults) < self.args.faults and not self.stop.wait(random.uniform(20, 60)):
            done = self.fault()
            self.faults.append(done)
            print(f"  fault {len(self.faults)}: {done}", flush=True)

    def uploads(self) -> None:
        token = self.farm("token", "admin").stdout.strip()
        data = project_tar()

        def upload(_):
            urls = random.sample(list(self.urls.values()), len(self.urls))
            return send_and_follow(urls, token, data, self.stop)
        with ThreadPoolExecutor(self.args.uploads) as pool:
            self.upload_answers.update(pool.map(upload, range(self.args.uploads)))

    def pusher(self, clones: dict[str, Path]) -> None:
        for number in range(self.args.pushes):
            if self.stop.wait(45):
                return
            push(clones, number)

    def run(self) -> int:
        clones = repositories(self.root, PROJECTS)
        (self.root / "farm").mkdir()
        try:
            engines = self.engines.start(list(TARGETS)) if self.engines else ""
            if self.store:
                self.store.mount()
            text, self.urls = farm_yaml(self.root, engines, self.store and self.store.store)
            self.config.write_text(text)
            started = self.farm("up", "--no-images")
            if started.returncode != 0:
                raise SystemExit(f"farm up failed:\n{started.stdout}{started.stderr}")
            try:
                figures = self.measure(clones)
            finally:
                self.stop.set()
                self.farm("down")
        finally:
            if self.engines:
                self.engines.close()
        # What is left is counted once the farm has stopped; then its caches go.
        try:
            return self.report(*figures)
        finally:
            remove_volumes(NAME)

    def measure(self, clones: dict[str, Path]) -> tuple:
        rss_before = self.rss_mb()
        pairs = [(p, t) for p in PROJECTS for t in TARGETS]
        forced = max(0, self.args.requests - self.args.uploads - self.args.pushes * len(TARGETS))
        expected = forced + self.args.uploads + self.args.pushes * len(TARGETS)
        threads = [threading.Thread(target=work, daemon=True) for work in
                   (self.poller, self.injector, self.uploads, lambda: self.pusher(clones))]
        for thread in threads:
            thread.start()
        for number in range(forced):
            self.force(*pairs[number % len(pairs)])
        print(f"queued {forced} forced builds; {self.args.pushes} pushes and "
              f"{self.args.uploads} uploads under way", flush=True)
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            queued = self.get("buildrequests")["buildrequests"]
            ended = [r for r in queued if r["complete"]]
            print(f"  {len(ended)} of {len(queued)} requests ended ({expected} expected)",
                  flush=True)
            if len(queued) >= expected and len(ended) == len(queued) \
                    and not threads[2].is_alive():
                break
            time.sleep(15)
        self.stop.set()
        rss_after = self.rss_mb()
        queued = self.get("buildrequests")["buildrequests"]
        return expected, rss_before, rss_after, queued, self.get("builds")["builds"]

    def report(self, expected: int, rss_before: dict, rss_after: dict, queued: list,
               builds: list) -> int:
        finished: dict[int, list[dict]] = {}
        for build in builds:
            if build["complete"] and build["results"] != RETRY:
                finished.setdefault(build["buildrequestid"], []).append(build)
        succeeded = sum(1 for r in queued if r["complete"] and r["results"] == 0)
        lost = [r["buildrequestid"] for r in queued if not r["complete"]]
        failed = [r for r in queued if r["complete"] and r["results"] not in (0, CANCELLED)]
        reasons = Counter(finished[r["buildrequestid"]][-1]["state_string"]
                          if r["buildrequestid"] in finished else "no build"
                          for r in failed)
        duplicates = sum(1 for runs in finished.values() if len(runs) > 1)
        damaged = damaged_releases(self.store.store if self.store else self.state / "artifacts")
        left = containers()
        volumes = upload_volumes()
        # A finished job's directory is kept compile.keep seconds for its client.
        uploads_left = [d for d in (self.state / "uploads").glob("*")
                        if not (d / "results").is_dir()] \
            if (self.state / "uploads").is_dir() else []
        print(f"\nrequests:      {len(queued)} queued ({expected} expected), {succeeded} "
              f"succeeded, {len(failed)} failed, {len(lost)} lost")
        for reason, count in reasons.most_common(8):
            print(f"  failed: {count} x {reason}")
        print(f"duplicates:    {duplicates}")
        print(f"releases:      {damaged} target(s) whose SHA256SUMS does not match")
        print(f"leftovers:     {len(left)} containers, {len(volumes)} upload volumes, "
              f"{len(uploads_left)} upload directories without results")
        print(f"faults:        {len(self.faults)}: "
              + ", ".join(f"{n} x {k}" for k, n in Counter(
                  f.split(":", 1)[0] for f in self.faults).items()))
        for name in self.urls:
            print(f"REST {name}:   slowest {self.slowest[name]:.2f} s, "
                  f"{self.undecodable[name]} undecodable, {self.unanswered[name]} unanswered or "
                  f"errors (while it or the database was down)")
        print("uploads:       " + ", ".join(f"{n} x {status}" for status, n in
                                             sorted(self.upload_answers.items())))
        for name in self.urls:
            (pid, before), (now, after) = rss_before.get(name, (0, 0)), rss_after.get(name, (0, 0))
            again = " (a process started again since)" if pid != now else ""
            print(f"RSS {name}:    {before:.0f} MB at the start, {after:.0f} MB at the end{again}")
        bad = lost or duplicates or damaged or left or volumes or uploads_left \
            or sum(self.undecodable.values()) or self.upload_answers.get("500") \
            or any(a.startswith("202, then 4") for a in self.upload_answers)
        return 1 if bad or len(queued) < expected else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--faults", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--engines", type=int, choices=(1, 2), default=2,
                        help="the docker pool's engines: the system's, and a second one")
    parser.add_argument("--no-full-store", action="store_true",
                        help="never fill the artifact store (it then needs no namespace)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the farm's directory (and its logs) and say where")
    args = parser.parse_args()
    if not args.no_full_store:
        StoreOutage.enter_namespace()
    if args.keep:
        scratch = tempfile.mkdtemp(prefix="rustfarm-chaos-")
        os.chmod(scratch, 0o711)
        print(f"the farm's directory: {scratch}", flush=True)
        return Chaos(Path(scratch), args).run()
    with tempfile.TemporaryDirectory(prefix="rustfarm-chaos-") as scratch:
        # PostgreSQL runs as its own user, who must reach its data directory below.
        os.chmod(scratch, 0o711)
        try:
            return Chaos(Path(scratch), args).run()
        finally:
            shutil.rmtree(Path(scratch) / "farm" / ".farm" / "postgres", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
