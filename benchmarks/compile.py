"""Upload to binary against `farm build` of the same sources, one target and all targets.

    .venv/bin/python benchmarks/compile.py [--runs N] [--targets all|mipsel]

A farm of the repository's docker targets (their images must be built: `farm
images build`) with the example project. For one target (mipsel musl) and for
every target of the farm, measured from the client's side:

- upload: POST of the example project's tar.gz to /plugins/compile/jobs until
  the binary (or the archive of all targets) has arrived; every upload builds
  in a fresh volume, so it is always a cold build;
- farm build, cold: `farm build hello --wait` after the cache volumes were removed;
- farm build, warm: `farm build hello --wait` again (same sources).

Prints the median of --runs of each. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.registry import free_port  # noqa: E402

FARM = str(Path(sys.executable).parent / "farm")
EXAMPLE = REPO / "examples" / "hello"
ONE = "mipsel-unknown-linux-musl"


def farm(config: Path, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([FARM, "--config", str(config), *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"farm {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return time.monotonic() - started


def project_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(EXAMPLE.rglob("*")):
            relative = path.relative_to(EXAMPLE)
            if "target" not in relative.parts:
                tar.add(path, arcname=relative.as_posix(), recursive=False)
    return gzip.compress(buffer.getvalue())


def remove_volumes(farm_name: str) -> None:
    listed = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                             f"name=rustfarm-{farm_name}-"], capture_output=True, text=True)
    if listed.stdout.split():
        subprocess.run(["docker", "volume", "rm", "-f", *listed.stdout.split()],
                       capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    repository = yaml.safe_load((REPO / "farm.yaml").read_text())
    targets = {t: spec for t, spec in repository["targets"].items()
               if spec.get("pool") == "docker"}
    root = Path(tempfile.mkdtemp(prefix="rustfarm-compile-bench-"))
    www = free_port()
    shutil.copytree(EXAMPLE, root / "hello", ignore=shutil.ignore_patterns("target"))
    config = root / "farm.yaml"
    config.write_text(yaml.safe_dump({
        "farm": {"name": "cbench", "worker_port": free_port()},
        "www": {"port": www, "users": ["admin"]},
        "schedule": {"nightly": False},
        "workers": {"docker": {**repository["workers"]["docker"]}},
        "targets": targets,
        "compile": {"queue": 50},
        "projects": {"hello": {"source": str(root / "hello"), "binaries": ["hello"],
                               "test": False}},
    }, sort_keys=False))
    url = f"http://127.0.0.1:{www}/"
    data = project_tar()
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        farm(config, "up", "--no-images")
        token = subprocess.run([FARM, "--config", str(config), "token", "admin"],
                               capture_output=True, text=True, check=True).stdout.strip()
        for label, chosen in (("one target", [ONE]), (f"all {len(targets)} targets",
                                                      list(targets))):
            rows = figures.setdefault(label, {"upload": [], "farm build, cold": [],
                                              "farm build, warm": []})
            for run in range(args.runs):
                started = time.monotonic()
                reply = requests.post(f"{url}plugins/compile/jobs", data=data, timeout=3600,
                                      params=[("target", t) for t in chosen],
                                      headers={"Authorization": f"Bearer {token}"})
                rows["upload"].append(time.monotonic() - started)
                if reply.status_code != 200:
                    raise SystemExit(f"upload failed: {reply.status_code} {reply.text[:500]}")
                remove_volumes("cbench")
                target_args = [a for t in chosen for a in ("--target", t)]
                rows["farm build, cold"].append(farm(config, "build", "hello", *target_args,
                                                     "--wait"))
                rows["farm build, warm"].append(farm(config, "build", "hello", *target_args,
                                                     "--wait"))
                print(f"{label}: run {run + 1} done", flush=True)
    finally:
        farm(config, "down")
        remove_volumes("cbench")
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nexample project, median of {args.runs} (seconds, request to binaries)")
    print(f"{'':22} {'upload':>8} {'farm build, cold':>17} {'farm build, warm':>17}")
    for label, rows in figures.items():
        print(f"{label:22} " + " ".join(f"{statistics.median(rows[k]):>{w}.1f}" for k, w in
                                        (("upload", 8), ("farm build, cold", 17),
                                         ("farm build, warm", 17))))


if __name__ == "__main__":
    main()
