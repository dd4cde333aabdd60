"""Time from a forge's push webhook to the build's first step, against the git
poller's wait: a project on GitHub (a recorded push payload, signed with the
project's webhook secret, sent to the master's /change_hook/github), built by one
local worker on this machine's target.

    .venv/bin/python benchmarks/webhook_latency.py [--runs N] [--poll-interval S]

Each run commits and pushes to a local bare repository, then sends the webhook.
The poller is left running, as in a farm, at --poll-interval (default 60 s): its
figure is what a push waits without the webhook, half the interval on average.
Prints the figures; asserts nothing.
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

from tests.support.farm import EXAMPLE, HOST_TARGET, RunningFarm, local_farm_yaml  # noqa: E402
from tests.support.forge_payloads import push_payload, signed_headers  # noqa: E402
from tests.support.git_repos import PushedRepository  # noqa: E402

REPOSITORY = "acme/hello"


def first_step_of(farm: RunningFarm, builderid: int, revision: str) -> dict | None:
    """The build of ``revision`` once its first step (after Buildbot's worker
    preparation) has started."""
    builds = farm.api("builds", builderid=builderid, property="got_revision")["builds"]
    for build in builds:
        if build["properties"].get("got_revision", [None])[0] != revision:
            continue
        steps = [s for s in farm.steps(build) if s["name"] != "worker_preparation"]
        if steps and steps[0]["started_at"] is not None:
            return build
    return None


def one_push(farm: RunningFarm, repo: PushedRepository, secret: str, builderid: int,
             number: int) -> float:
    before = repo.head()
    repo.commit("src/main.rs", f'fn main() {{\n    println!("push {number}");\n}}\n',
                f"push {number}")
    after = repo.push()
    body = push_payload("github", REPOSITORY, before, after)
    started = time.monotonic()
    reply = requests.post(f"{farm.url}change_hook/github", data=body,
                          headers=signed_headers("github", secret, body), timeout=30)
    reply.raise_for_status()
    while True:
        build = first_step_of(farm, builderid, after)
        if build is not None:
            took = time.monotonic() - started
            break
        if time.monotonic() - started > 120:
            raise SystemExit(f"push {number}: no build of {after[:12]} within 120 s")
        time.sleep(0.01)
    farm.wait_for_build(build["buildrequestid"], timeout=300)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--poll-interval", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        repo = PushedRepository(Path(tmp) / "git", "hello", EXAMPLE)
        farm = RunningFarm(Path(tmp) / "farm", local_farm_yaml(f"""\
  hello:
    source: {repo.url}
    poll_interval: {args.poll_interval}
    test: false
    forge: {{kind: github, repository: {REPOSITORY}, statuses: false}}
""", workers=1))
        secret = farm.farm("webhook-secret", "hello").stdout.strip()
        try:
            farm.up()
            builderid = {b["name"]: b["builderid"] for b in
                         farm.api("builders")["builders"]}[f"hello:{HOST_TARGET}"]
            one_push(farm, repo, secret, builderid, 0)          # warms the worker
            times = [one_push(farm, repo, secret, builderid, n + 1) for n in range(args.runs)]
        finally:
            farm.down()
    print(f"push webhook -> first step started, example project, {HOST_TARGET}, one "
          f"local worker, {args.runs} runs after one warm-up")
    print(f"{'':30}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'webhook':30}{statistics.median(times):>8.3f}s{min(times):>8.3f}s"
          f"{max(times):>8.3f}s")
    print(f"{'poller alone (its wait)':30}{args.poll_interval / 2:>8.1f}s{0:>8.1f}s"
          f"{args.poll_interval:>8.1f}s")


if __name__ == "__main__":
    main()
