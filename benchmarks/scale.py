"""How the farm's costs grow with its number of builders.

Longer than 350 lines because it is one measurement run as one script: the farm it
makes, what it times and the table it prints read best top to bottom.

    .venv/bin/python benchmarks/scale.py [--builders 11,110,550,1100,2200] [--targets 11]
        [--pool local|docker] [--db sqlite|postgresql] [--poll-interval 60] [--runs 3]

For each size, a fresh farm of copies of the example project; what it measures and how
is in docs/benchmarks.md. Prints the figures as a table; asserts nothing. The first
size is the single-project reference the others are compared with.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.registry import free_port  # noqa: E402

EXAMPLE = REPO / "examples" / "hello"
FARM = str(Path(sys.executable).parent / "farm")
HOST = "x86_64-unknown-linux-gnu"
# Targets added on local pools: only the host's builds; the rest give the farm its size.
LOCAL_TRIPLES = [
    HOST, "i686-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "mipsel-unknown-linux-gnu",
    "mips-unknown-linux-musl", "armv7-unknown-linux-gnueabihf", "riscv64gc-unknown-linux-gnu",
    "powerpc64le-unknown-linux-gnu", "s390x-unknown-linux-gnu", "x86_64-unknown-linux-musl",
    "wasm32-unknown-unknown", "mips64el-unknown-linux-gnuabi64", "arm-unknown-linux-gnueabi",
    "aarch64-unknown-linux-musl", "x86_64-pc-windows-gnu", "mips64-unknown-linux-gnuabi64",
    "mipsel-unknown-linux-musl", "armv5te-unknown-linux-gnueabi", "mips-unknown-linux-gnu",
    "armv7-unknown-linux-musleabihf", "mips64-unknown-linux-muslabi64",
    "mips64el-unknown-linux-muslabi64",
]
WAIT_FOR_BUILD = 300.0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class Figures:
    builders: int
    projects: int
    workers: int = 0
    schedulers: int = 0
    up_fresh: float = float("nan")
    up_restart: float = float("nan")
    down: float = float("nan")
    page_slowest: float = float("nan")
    page_slowest_call: str = ""
    forcesched_s: float = float("nan")
    forcesched_mb: float = float("nan")
    to_first_step: list[float] = field(default_factory=list)
    to_done: list[float] = field(default_factory=list)
    commit_to_build: float = float("nan")
    commit_only_project: bool | None = None
    rss_mb: float = float("nan")
    peak_mb: float = float("nan")
    idle_cpu: float = float("nan")
    notes: list[str] = field(default_factory=list)


class ScaleFarm:
    """A farm.yaml of ``projects`` git projects in ``root``, driven by the `farm` command."""

    def __init__(self, root: Path, projects: int, targets: list[str], pool: str,
                 poll_interval: int, db_url: str | None):
        self.root = root
        self.projects = [f"p{i:04d}" for i in range(projects)]
        self.targets = targets
        self.www = free_port()
        self.url = f"http://127.0.0.1:{self.www}/"
        self.config = root / "farm.yaml"
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.make_repositories()
        self.config.write_text(self.farm_yaml(pool, poll_interval, db_url))

    def make_repositories(self) -> None:
        template = self.root / "template"
        shutil.copytree(EXAMPLE, template, ignore=shutil.ignore_patterns("target"))
        git(template, "init", "-q", "-b", "main")
        git(template, "add", ".")
        git(template, "-c", "user.email=bench@example.invalid", "-c", "user.name=bench",
            "commit", "-qm", "hello")
        (self.root / "git").mkdir()
        for name in self.projects:
            git(self.root, "clone", "-q", "--bare", str(template), str(self.bare(name)))

    def bare(self, project: str) -> Path:
        return self.root / "git" / f"{project}.git"

    def farm_yaml(self, pool: str, poll_interval: int, db_url: str | None) -> str:
        settings: dict = {
            "farm": {"name": "scale", "worker_port": free_port()},
            "www": {"port": self.www, "users": ["admin"]},
            "schedule": {"nightly": "03:00"},
        }
        if db_url:
            settings["db"] = {"url": db_url}
        # A worker serves at most 1,000 builders (master/builders.py): 2 workers, or more.
        count = max(2, -(-len(self.projects) * len(self.targets) // 1000))
        if pool == "docker":
            repository = yaml.safe_load((REPO / "farm.yaml").read_text())
            settings["workers"] = {"local": {"kind": "local", "count": 1},
                                   "docker": {**repository["workers"]["docker"], "count": count}}
            settings["targets"] = {t: repository["targets"][t] for t in self.targets}
        else:
            settings["workers"] = {"local": {"kind": "local", "count": count}}
            settings["targets"] = {t: {"pool": "local"} for t in self.targets}
        self.workers = count
        settings["projects"] = {
            name: {"source": f"file://{self.bare(name)}", "branches": ["main"],
                   "poll_interval": poll_interval, "binaries": ["hello"], "test": False}
            for name in self.projects}
        return yaml.safe_dump(settings, sort_keys=False)

    def farm(self, *args: str, timeout: float = 1800) -> float:
        started = time.monotonic()
        done = subprocess.run([FARM, "--config", str(self.config), *args], capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"farm {' '.join(args)}: {done.stdout}{done.stderr}")
        return time.monotonic() - started

    def up(self) -> float:
        return self.farm("up", "--no-images", "--wait-timeout", "1200")

    def down(self) -> float:
        return self.farm("down")

    def get(self, path: str, **params) -> requests.Response:
        reply = self.session.get(f"{self.url}api/v2/{path}", params=params, timeout=120)
        reply.raise_for_status()
        return reply

    def login(self) -> None:
        password = (self.root / ".farm" / "secrets" / "ui-admin").read_text().strip()
        self.session.cookies.clear()
        self.session.get(f"{self.url}auth/login", auth=("admin", password),
                         timeout=60).raise_for_status()

    def master_pid(self) -> int:
        return int((self.root / ".farm" / "master" / "twistd.pid").read_text().strip())

    def builder_ids(self) -> dict[str, int]:
        return {b["name"]: b["builderid"] for b in self.get("builders").json()["builders"]}


def memory_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, limit: float = 120) -> None:
    """Wait until the master is mostly idle (pollers' first fetches done), at most ``limit``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - before < 0.2:
            return


def builder_page(farm: ScaleFarm, builderid: int, projectid: int | None) -> tuple[float, str]:
    """The calls the UI's builder page makes; the slowest one's time and path."""
    calls = [
        (f"builders/{builderid}", {}),
        ("builds", {"builderid": builderid, "limit": 200, "order": "-number",
                    "property": ["owners", "workername", "branch", "revision"]}),
        ("buildrequests", {"builderid": builderid, "claimed": "false"}),
        (f"builders/{builderid}/forceschedulers", {"order": "name"}),
        (f"builders/{builderid}/workers", {"order": "name"}),
    ]
    if projectid is not None:
        calls.append((f"projects/{projectid}", {}))
    slowest, which = 0.0, ""
    for path, params in calls:
        started = time.monotonic()
        farm.get(path, **params)
        took = time.monotonic() - started
        if took > slowest:
            slowest, which = took, path
    return slowest, which


def force_from_builder_page(farm: ScaleFarm, builderid: int) -> tuple[float, float]:
    """Press the builder page's "Force build"; seconds to the first step started and to done."""
    schedulers = farm.get(f"builders/{builderid}/forceschedulers").json()["forceschedulers"]
    scheduler = next(s for s in schedulers if s["button_name"] == "Force build")
    body = {"jsonrpc": "2.0", "id": 1, "method": "force",
            "params": {"builderid": str(builderid)}}
    started = time.monotonic()
    reply = farm.session.post(f"{farm.url}api/v2/forceschedulers/{scheduler['name']}",
                              json=body, timeout=120)
    reply.raise_for_status()
    [brid] = reply.json()["result"][1].values()
    first_step = None
    while time.monotonic() - started < WAIT_FOR_BUILD:
        builds = farm.get("builds", buildrequestid=brid).json()["builds"]
        if builds:
            build = builds[-1]
            if first_step is None:
                steps = farm.get(f"builds/{build['buildid']}/steps", limit=1).json()["steps"]
                if steps and steps[0]["started_at"] is not None:
                    first_step = time.monotonic() - started
            if build["complete"]:
                if build["results"] != 0:
                    raise RuntimeError(f"the forced build failed: {farm.url}#/builders/"
                                       f"{build['builderid']}/builds/{build['number']}")
                return first_step or float("nan"), time.monotonic() - started
        time.sleep(0.05)
    return first_step or float("inf"), float("inf")


def push_commit(farm: ScaleFarm, project: str, builder_ids: dict[str, int],
                limit: float) -> tuple[float, bool]:
    """Push a commit to ``project``; seconds to its first build started, and whether only
    that project's builders got requests."""
    work = farm.root / f"work-{project}"
    git(farm.root, "clone", "-q", str(farm.bare(project)), str(work))
    main = work / "src" / "main.rs"
    main.write_text(main.read_text() + f"// pushed at {time.time()}\n")
    git(work, "-c", "user.email=bench@example.invalid", "-c", "user.name=bench",
        "commit", "-qam", "a change")
    newest = farm.get("buildrequests", order="-buildrequestid", limit=1).json()["buildrequests"]
    last_brid = newest[0]["buildrequestid"] if newest else 0
    ours = {bid for name, bid in builder_ids.items() if name.startswith(f"{project}:")}
    git(work, "push", "-q", "origin", "main")
    pushed = time.monotonic()
    while time.monotonic() - pushed < limit:
        requests_now = [r for r in farm.get("buildrequests", order="-buildrequestid",
                                            limit=200).json()["buildrequests"]
                        if r["buildrequestid"] > last_brid]
        builds = farm.get("builds", order="-buildid", limit=50).json()["builds"]
        started = [b for b in builds if b["builderid"] in ours
                   and b["buildrequestid"] > last_brid]
        if started:
            took = time.monotonic() - pushed
            time.sleep(1)     # any other project's requests would be there by now
            requests_now = [r for r in farm.get("buildrequests", order="-buildrequestid",
                                                limit=200).json()["buildrequests"]
                            if r["buildrequestid"] > last_brid]
            only = bool(requests_now) and all(r["builderid"] in ours for r in requests_now) \
                and {r["builderid"] for r in requests_now} == ours
            return took, only
        time.sleep(0.1)
    return float("inf"), False


def wait_for_builds(farm: ScaleFarm, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not farm.get("buildrequests", complete="false", limit=1).json()["buildrequests"]:
            return
        time.sleep(1)


def idle_cpu(pid: int, seconds: float = 10) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


def measure(builders: int, args, db_urls) -> Figures:
    targets = args.target_list
    projects = max(1, round(builders / len(targets)))
    figures = Figures(builders=projects * len(targets), projects=projects)
    with tempfile.TemporaryDirectory(prefix="rustfarm-scale-") as tmp:
        farm = ScaleFarm(Path(tmp), projects, targets, args.pool, args.poll_interval,
                         db_urls(projects))
        figures.workers = farm.workers
        try:
            figures.up_fresh = farm.up()
            pid = farm.master_pid()
            ids = farm.builder_ids()
            figures.schedulers = len(farm.get("schedulers").json()["schedulers"])
            settle(pid)
            middle = farm.projects[len(farm.projects) // 2]
            forced = ids[f"{middle}:{HOST}"]
            projectid = farm.get(f"builders/{forced}").json()["builders"][0]["projectid"]
            figures.page_slowest, figures.page_slowest_call = builder_page(farm, forced,
                                                                          projectid)
            started = time.monotonic()
            reply = farm.get("forceschedulers")
            figures.forcesched_s = time.monotonic() - started
            figures.forcesched_mb = len(reply.content) / 1e6
            farm.login()
            for _ in range(args.runs):
                first, done = force_from_builder_page(farm, forced)
                figures.to_first_step.append(first)
                figures.to_done.append(done)
                if first == float("inf"):
                    figures.notes.append(f"forced build not started after {WAIT_FOR_BUILD:.0f} s")
                    break
            if args.poll_interval and figures.to_done[-1] != float("inf"):
                pushed = farm.projects[-1]
                figures.commit_to_build, figures.commit_only_project = push_commit(
                    farm, pushed, ids, args.poll_interval + 120)
            if figures.to_done[-1] != float("inf"):
                wait_for_builds(farm)
                settle(pid, limit=30)
            figures.idle_cpu = idle_cpu(pid)
            figures.rss_mb, figures.peak_mb = memory_mb(pid)
            figures.down = farm.down()
            figures.up_restart = farm.up()
        finally:
            try:
                farm.down()
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                figures.notes.append(f"farm down failed: {err}")
    return figures


def seconds(value: float) -> str:
    return "never" if value == float("inf") else ("-" if value != value else f"{value:.2f}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(rows: list[Figures], args) -> None:
    reference = median(rows[0].to_first_step) if rows else float("nan")
    columns = [
        ("builders", lambda f: str(f.builders)),
        ("projects", lambda f: str(f.projects)),
        ("workers", lambda f: str(f.workers)),
        ("schedulers", lambda f: str(f.schedulers)),
        ("up fresh s", lambda f: seconds(f.up_fresh)),
        ("down s", lambda f: seconds(f.down)),
        ("up again s", lambda f: seconds(f.up_restart)),
        ("page max s", lambda f: seconds(f.page_slowest)),
        ("forcesched s", lambda f: seconds(f.forcesched_s)),
        ("forcesched MB", lambda f: "-" if f.forcesched_mb != f.forcesched_mb
         else f"{f.forcesched_mb:.3f}"),
        ("force->step s", lambda f: seconds(median(f.to_first_step))),
        ("x ref", lambda f: "-" if not f.to_first_step or reference != reference
         else f"{median(f.to_first_step) / reference:.2f}"),
        ("force->done s", lambda f: seconds(median(f.to_done))),
        ("push->build s", lambda f: seconds(f.commit_to_build)),
        ("only its proj", lambda f: {None: "-", True: "yes", False: "NO"}[f.commit_only_project]),
        ("RSS MB", lambda f: f"{f.rss_mb:.0f}"),
        ("peak MB", lambda f: f"{f.peak_mb:.0f}"),
        ("idle CPU %", lambda f: f"{f.idle_cpu:.0f}"),
    ]
    cells = [[name for name, _ in columns]] + [[cell(f) for _, cell in columns] for f in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    print(f"pool {args.pool}, db {args.db}, {len(args.target_list)} targets per project, "
          f"poll every {args.poll_interval} s, {args.runs} forced builds per size (median); "
          f"'x ref': force->step against the first row")
    for row in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
    for f in rows:
        if f.page_slowest_call:
            print(f"  {f.builders} builders: slowest builder-page call: {f.page_slowest_call}")
        for note in f.notes:
            print(f"  {f.builders} builders: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builders", default="11,110,550,1100,2200",
                        help="comma-separated sizes; the first is the reference")
    parser.add_argument("--targets", type=int, default=None,
                        help="targets per project (default: 11 local, farm.yaml's for docker)")
    parser.add_argument("--pool", choices=("local", "docker"), default="local")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--poll-interval", type=int, default=60,
                        help="seconds between polls of each project (0: no commit figure)")
    parser.add_argument("--runs", type=int, default=3, help="forced builds per size")
    args = parser.parse_args()
    if args.pool == "docker":
        available = list(yaml.safe_load((REPO / "farm.yaml").read_text())["targets"])
        available.sort(key=lambda t: t != HOST)
    else:
        available = LOCAL_TRIPLES
    args.target_list = available[:args.targets or (len(available) if args.pool == "docker"
                                                   else 11)]

    cluster = None
    if args.db == "postgresql":
        from tests.support.postgres import PrivateCluster, ensure_server
        reason = ensure_server()
        if reason:
            raise SystemExit(reason)
        cluster = PrivateCluster().start()
        counter = iter(range(1000))

        def db_urls(projects: int) -> str:
            return cluster.create_database(f"scale_{projects}_{next(counter)}")
    else:
        def db_urls(projects: int) -> None:
            return None

    rows = []
    try:
        for size in (int(s) for s in args.builders.split(",")):
            figures = measure(size, args, db_urls)
            rows.append(figures)
            print(f"measured {figures.builders} builders", file=sys.stderr, flush=True)
    finally:
        if cluster:
            cluster.stop()
    print_table(rows, args)


if __name__ == "__main__":
    main()
