"""A running farm's REST API and pages under polling clients: how slow the slowest
answer is, and whether every answer decodes (its content-encoding, then its JSON).

    .venv/bin/python benchmarks/rest_load.py --config farm.yaml [--clients 8]
        [--seconds 60] [--interval 0]

Each client keeps one HTTP session (keep-alive, as the web UI and the tests do)
and asks, in turn, for the builders, builds (with their properties), workers,
masters, build requests, changes, buildsets, schedulers and the target
matrix; with ``--interval 2`` it polls as a dashboard does. An answer that says
``content-encoding: gzip`` but does not decode is counted with its path and
headers: what the chaos run's pollers check. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rustfarm.farmfile import load  # noqa: E402

PATHS = ["api/v2/builders", "api/v2/builds?limit=50&property=*", "api/v2/workers",
         "api/v2/masters", "api/v2/buildrequests?limit=50", "api/v2/changes?limit=20",
         "api/v2/buildsets?limit=20", "api/v2/schedulers", "plugins/matrix/data.json"]


class Poller:
    def __init__(self, base: str, seconds: float, interval: float):
        self.base = base
        self.until = time.monotonic() + seconds
        self.interval = interval
        self.times: list[float] = []
        self.failures: collections.Counter = collections.Counter()
        self.lock = threading.Lock()

    def ask(self, session: requests.Session, path: str) -> str | None:
        """What was wrong with the answer to ``path``, if anything."""
        try:
            reply = session.get(self.base + path, timeout=30, stream=True,
                                headers={"Accept": "application/json"})
        except requests.RequestException as err:
            return f"{type(err).__name__}: {str(err)[:120]}"
        encoding = reply.headers.get("content-encoding", "none")
        try:
            body = reply.content
            if path.startswith("api/"):
                reply.json()
        except (requests.RequestException, ValueError) as err:
            return f"{type(err).__name__} (content-encoding: {encoding}): {str(err)[:120]}"
        if not reply.ok:
            return f"HTTP {reply.status_code}"
        return None if body else "an empty answer"

    def client(self) -> None:
        session = requests.Session()
        turn = 0
        while time.monotonic() < self.until:
            path = PATHS[turn % len(PATHS)]
            turn += 1
            started = time.monotonic()
            problem = self.ask(session, path)
            took = time.monotonic() - started
            with self.lock:
                self.times.append(took)
                if problem:
                    self.failures[f"{path}: {problem}"] += 1
            if self.interval:
                time.sleep(max(0.0, self.interval - took))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="farm.yaml")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=0)
    args = parser.parse_args()
    base = load(args.config).farm.url
    poller = Poller(base, args.seconds, args.interval)
    threads = [threading.Thread(target=poller.client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(poller.times)
    print(f"{base}: {args.clients} clients for {args.seconds:.0f} s"
          f"{f', every {args.interval} s' if args.interval else ''}: {len(times)} answers")
    if times:
        print(f"median {statistics.median(times) * 1000:.1f} ms, 99th percentile "
              f"{times[int(len(times) * 0.99) - 1] * 1000:.1f} ms, slowest "
              f"{times[-1] * 1000:.1f} ms")
    print(f"answers that failed or did not decode: {sum(poller.failures.values())}")
    for what, count in poller.failures.most_common(10):
        print(f"  {count} x {what}")


if __name__ == "__main__":
    main()
