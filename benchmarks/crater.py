"""A crater run for MIPS: each of 100 of the most downloaded crates
(benchmarks/crater/top-crates.txt) as the dependency of a one-line binary, built for
x86_64-unknown-linux-musl and every MIPS target in the farm's images, its crates from
crates.io through the farm's crate store.

    .venv/bin/python benchmarks/crater.py [--targets T,...] [--crates N]

Prints a table of pass or fail per crate and target, and for each failure its
first error line; then which crates build for x86_64 musl but not for a MIPS
target. Each target's builds run in one container of its image, one after another
in one target directory, so crates two probes share are compiled once per target.
Takes hours for every target (--targets and --crates choose fewer). The worker
images must be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rustfarm.cargo_lock import read_lock, store_config, toml_text  # noqa: E402
from rustfarm.crate_store import CrateStore  # noqa: E402
from rustfarm.dependencies import (CargoSettings, DependencyError,  # noqa: E402
                                   fetch_dependencies, machine_config_files)
from rustfarm.images.recipes import current_reference  # noqa: E402
from rustfarm.workers.docker_volumes import CRATE_STORE_DIR  # noqa: E402

HERE = REPO / "benchmarks" / "crater"
REFERENCE = "x86_64-unknown-linux-musl"
MIPS = ["mips-unknown-linux-gnu", "mipsel-unknown-linux-gnu", "mips64-unknown-linux-gnuabi64",
        "mips64el-unknown-linux-gnuabi64", "mips-unknown-linux-musl",
        "mipsel-unknown-linux-musl", "mips64-unknown-linux-muslabi64",
        "mips64el-unknown-linux-muslabi64"]


def crates(limit: int) -> list[str]:
    names = [line.strip() for line in (HERE / "top-crates.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return names[:limit]


def probe(root: Path, crate: str) -> Path:
    """A one-line binary that depends on ``crate``."""
    directory = root / crate
    (directory / "src").mkdir(parents=True)
    (directory / "Cargo.toml").write_text(
        f'[package]\nname = "probe-{crate}"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\n{crate} = "*"\n')
    (directory / "src" / "main.rs").write_text(f'fn main() {{ println!("{crate}"); }}\n')
    return directory


def fetch(directory: Path, store: CrateStore, settings: CargoSettings) -> str | None:
    """Resolve and fetch the probe's crates; its view of the store and cargo's
    configuration beside it. The reason it could not, or None."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    snapshot = directory.parent / f"{directory.name}.tar.gz"
    snapshot.write_bytes(buffer.getvalue())
    try:
        fetched = fetch_dependencies(snapshot, "", store, settings)
    except DependencyError as err:
        return str(err).splitlines()[0]
    (directory / "Cargo.lock").write_text(fetched.resolved_lock)
    view = directory / "view"
    view.mkdir()
    for package in read_lock(fetched.resolved_lock):
        if package.kind != "path":
            (view / f"{package.name}-{package.version}").symlink_to(
                f"{CRATE_STORE_DIR}/{package.store_key}")
    (directory / "crates.toml").write_text(toml_text(store_config(
        read_lock(fetched.resolved_lock), f"/probes/{directory.name}/view")))
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join([REFERENCE, *MIPS]))
    parser.add_argument("--crates", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the table here, as JSON")
    args = parser.parse_args()
    targets = args.targets.split(",")
    names = crates(args.crates)
    # Each target's image as the recipes say now, once: the run takes long.
    images = {target: current_reference(target) for target in targets}
    with tempfile.TemporaryDirectory(prefix="rustfarm-crater-") as tmp:
        root = Path(tmp)
        probes, results = root / "probes", root / "results"
        results.mkdir()
        store = CrateStore(root / "store")
        settings = CargoSettings(cargo_home=root / "cargo-home",
                                 config_files=machine_config_files())
        unfetched = {}
        for name in names:
            why = fetch(probe(probes, name), store, settings)
            if why:
                unfetched[name] = why
        buildable = [n for n in names if n not in unfetched]
        subprocess.run(["chmod", "-R", "a+rwX", str(root)], check=True)
        table: dict[str, dict] = {}
        for target in targets:
            started = time.monotonic()
            subprocess.run(["docker", "run", "--rm", "--network", "none",
                            "-v", f"{probes}:/probes", "-v", f"{results}:/results",
                            "-v", f"{store.root}:{CRATE_STORE_DIR}:ro",
                            "-v", f"{HERE / 'build_probes.py'}:/build_probes.py:ro",
                            "-e", "CARGO_TARGET_DIR=/tmp/target", images[target],
                            "python3", "/build_probes.py", *buildable], check=True)
            table[target] = json.loads((results / f"{target}.json").read_text())
            print(f"{target}: {time.monotonic() - started:.0f} s", flush=True)
    width = max(len(n) for n in names)
    print("\n" + f"{'crate':<{width}}  " + "  ".join(t.split("-")[0] + ("/musl" if "musl" in t
                                                                        else "")
                                                    for t in targets))
    for name in names:
        cells = ["fetch" if name in unfetched else
                 ("ok" if table[t][name]["ok"] else "FAIL") for t in targets]
        print(f"{name:<{width}}  " + "  ".join(f"{c:<{len(t.split('-')[0]) + 5}}"
                                                for c, t in zip(cells, targets)))
    print("\nfailures:")
    for name in names:
        if name in unfetched:
            print(f"  {name}: not fetched: {unfetched[name]}")
        for target in targets:
            found = table[target].get(name)
            if found and not found["ok"]:
                print(f"  {name} on {target}: {found['error']}")
    if REFERENCE in targets:
        print("\nbuild for x86_64 musl but not for:")
        for name in names:
            if name in unfetched or not table[REFERENCE][name]["ok"]:
                continue
            missing = [t for t in targets if t != REFERENCE and not table[t][name]["ok"]]
            if missing:
                print(f"  {name}: {', '.join(missing)}")
    passed = sum(1 for t in targets for n in buildable if table[t][n]["ok"])
    if args.json:
        args.json.write_text(json.dumps({"images": images, "not_fetched": unfetched,
                                         "builds": table}, indent=1, sort_keys=True))
    print(f"\n{passed} of {len(targets) * len(names)} builds passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
