"""Time from a force request to the artifact being downloadable, against a direct
`cargo build` of the same source, for the example project on local workers.

    .venv/bin/python benchmarks/force_to_artifact.py [--runs N]

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "hello"
TARGET = "x86_64-unknown-linux-gnu"
FARM = str(Path(sys.executable).parent / "farm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def force_and_wait_for_artifact(url: str, session: requests.Session) -> float:
    body = {"jsonrpc": "2.0", "id": 1, "method": "force",
            "params": {"targets": [TARGET], "branch": "main", "revision": "", "profile": "release"}}
    start = time.monotonic()
    reply = session.post(f"{url}api/v2/forceschedulers/force-hello", json=body, timeout=30)
    reply.raise_for_status()
    [brid] = reply.json()["result"][1].values()
    while True:
        builds = session.get(f"{url}api/v2/builds", params={"buildrequestid": brid},
                             timeout=30).json()["builds"]
        if builds and builds[-1]["complete"]:
            break
        time.sleep(0.05)
    build = builds[-1]
    if build["results"] != 0:
        raise SystemExit(f"build failed: {url}#/builders/{build['builderid']}/builds/{build['number']}")
    steps = session.get(f"{url}api/v2/builds/{build['buildid']}/steps", timeout=30).json()["steps"]
    archive = next(u["url"] for s in steps for u in s["urls"] if u["url"].endswith(".tar.gz"))
    session.get(archive, timeout=30).raise_for_status()
    return time.monotonic() - start


def direct_cargo_build(workdir: Path, touch: bool) -> float:
    if touch:
        (workdir / "src" / "main.rs").touch()
    start = time.monotonic()
    subprocess.run(["cargo", "build", "--release", "--locked", "--target", TARGET],
                   cwd=workdir, check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        root = Path(tmp)
        www = free_port()
        config = root / "farm.yaml"
        config.write_text(f"""\
farm: {{name: bench, worker_port: {free_port()}}}
www: {{port: {www}, users: [admin]}}
schedule: {{nightly: false}}
workers: {{local: {{kind: local, count: 1}}}}
targets: {{{TARGET}: {{pool: local, runner: native}}}}
projects: {{hello: {{source: {EXAMPLE}, test: false}}}}
""")
        subprocess.run([FARM, "--config", str(config), "up"], check=True, capture_output=True)
        try:
            url = f"http://127.0.0.1:{www}/"
            session = requests.Session()
            password = (root / ".farm" / "secrets" / "ui-admin").read_text().strip()
            session.get(f"{url}auth/login", auth=("admin", password), timeout=30)
            farm_cold = force_and_wait_for_artifact(url, session)
            farm_warm = [force_and_wait_for_artifact(url, session) for _ in range(args.runs)]
        finally:
            subprocess.run([FARM, "--config", str(config), "down"], capture_output=True)
        work = root / "direct"
        shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("target"))
        cargo_cold = direct_cargo_build(work, touch=False)
        cargo_warm = [direct_cargo_build(work, touch=True) for _ in range(args.runs)]

    warm_farm, warm_cargo = statistics.median(farm_warm), statistics.median(cargo_warm)
    print(f"example project, target {TARGET}, release profile, {args.runs} warm runs (median)")
    print(f"{'':34}{'cold':>10}{'warm':>10}")
    print(f"{'farm: force -> artifact served':34}{farm_cold:>9.2f}s{warm_farm:>9.2f}s")
    print(f"{'cargo build run directly':34}{cargo_cold:>9.2f}s{warm_cargo:>9.2f}s")
    print(f"{'farm overhead':34}{farm_cold - cargo_cold:>9.2f}s{warm_farm - warm_cargo:>9.2f}s")


if __name__ == "__main__":
    main()
