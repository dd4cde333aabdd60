"""Time from a force request to the build's first step, with one master and with two
in Buildbot's multi-master mode (PostgreSQL for both, so only the masters differ; the
two masters share their messages through the farm's crossbar router). With two masters
the one local worker attaches to the first and builds are forced through each.

    tools/bootstrap --router
    .venv/bin/python benchmarks/multimaster_latency.py [--runs N]

Starts a private PostgreSQL server (Debian's postgresql). Prints the figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.farm import EXAMPLE, HOST_TARGET, RunningFarm, two_masters_yaml  # noqa: E402
from tests.support.postgres import PrivateCluster, ensure_server  # noqa: E402


def force_to_first_step(url: str, session: requests.Session, builderid: int) -> float:
    body = {"jsonrpc": "2.0", "id": 1, "method": "force",
            "params": {"builderid": str(builderid)}}
    start = time.monotonic()
    reply = session.post(f"{url}api/v2/forceschedulers/force-hello-builder", json=body,
                         timeout=30, headers={"Accept": "application/json"})
    reply.raise_for_status()
    [brid] = reply.json()["result"][1].values()
    first = None
    while True:
        builds = session.get(f"{url}api/v2/builds", params={"buildrequestid": brid},
                             timeout=30, headers={"Accept": "application/json"}).json()["builds"]
        if builds and first is None:
            steps = session.get(f"{url}api/v2/builds/{builds[-1]['buildid']}/steps",
                                timeout=30, headers={"Accept": "application/json"}).json()
            if any(s["started_at"] for s in steps["steps"]):
                first = time.monotonic() - start
        if first is not None and builds[-1]["complete"]:
            return first
        time.sleep(0.02)


def measure(farm: RunningFarm, urls: dict[str, str], runs: int) -> dict[str, list[float]]:
    builderid = {b["name"]: b["builderid"]
                 for b in farm.api("builders")["builders"]}[f"hello:{HOST_TARGET}"]
    found = {}
    for label, url in urls.items():
        session = requests.Session()
        session.get(f"{url}auth/login", auth=("admin", farm.password()),
                    timeout=30).raise_for_status()
        force_to_first_step(url, session, builderid)           # warm the worker
        found[label] = [force_to_first_step(url, session, builderid) for _ in range(runs)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    reason = ensure_server()
    if reason:
        raise SystemExit(reason)
    cluster = PrivateCluster().start()
    figures: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
            body = (f"schedule: {{nightly: false}}\n"
                    f"workers: {{local: {{kind: local, count: 1}}}}\n"
                    f"targets: {{{HOST_TARGET}: {{pool: local, runner: native}}}}\n"
                    f"projects: {{hello: {{source: {EXAMPLE}, test: false}}}}\n")
            one = RunningFarm(Path(tmp) / "one",
                              f"db: {{url: \"{cluster.create_database('one')}\"}}\n" + body)
            try:
                one.up()
                figures |= measure(one, {"one master": one.url}, args.runs)
            finally:
                one.down()
            two = RunningFarm(Path(tmp) / "two", "")
            two.config.write_text(two.config.read_text() + two_masters_yaml(
                two, db=f'{{url: "{cluster.create_database("two")}"}}') + body)
            try:
                two.up()
                figures |= measure(two, {
                    "two masters, via the worker's master": two.url,
                    "two masters, via the other master": two.second_url},
                    args.runs)
            finally:
                two.down()
    finally:
        cluster.stop()
    print(f"force -> first step started, example project, {HOST_TARGET}, PostgreSQL, "
          f"one local worker, {args.runs} runs each after one warm-up")
    print(f"{'':40}{'median':>9}{'min':>9}{'max':>9}")
    for label, times in figures.items():
        print(f"{label:40}{statistics.median(times):>8.3f}s{min(times):>8.3f}s"
              f"{max(times):>8.3f}s")


if __name__ == "__main__":
    main()
