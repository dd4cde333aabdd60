"""Binary sizes for a router: the example (examples/hello) and a real application
(benchmarks/fixtures/big-app, 196 crates) built through the farm for --target with
the release profile with symbols, stripped (the farm's default), and the min-size
profile (opt-level "z", fat LTO, one codegen unit, panic=abort, stripped).

    .venv/bin/python benchmarks/sizes.py [--target mipsel-unknown-linux-musl] [--only hello]

Needs the worker images (`farm images build`) and crates.io. Prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.container_builds import Farm, image_of  # noqa: E402

APPS = {"hello": REPO / "examples" / "hello", "big-app": REPO / "benchmarks" / "fixtures" / "big-app"}
VARIANTS = {"release": "profile: release, strip: false",     # cargo's own release
            "stripped": "profile: release",                     # the farm's default
            "min-size": "profile: min-size"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="mipsel-unknown-linux-musl")
    parser.add_argument("--only", choices=sorted(APPS), help="one application")
    args = parser.parse_args()
    apps = {args.only: APPS[args.only]} if args.only else APPS
    triple = args.target

    with tempfile.TemporaryDirectory(prefix="rustfarm-sizes-") as scratch:
        root = Path(scratch)
        projects = []
        for app, source in apps.items():
            copy = root / app
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("target"))
            for variant, settings in VARIANTS.items():
                projects.append(f"  {app}-{variant}: {{source: {copy}, test: false, {settings}}}")
        (root / "farm").mkdir()
        farm = Farm(root / "farm", f"""\
workers:
  bench: {{kind: docker, count: 1, cpus: 2, memory: 6g, standby: 0}}
targets:
  {triple}: {{pool: bench, image: "{image_of(triple)}"}}
projects:
""" + "\n".join(projects) + "\n")
        rows = []
        with farm:
            for app in apps:
                for variant in VARIANTS:
                    began = time.monotonic()
                    build = farm.wait(farm.force(f"{app}-{variant}", triple)[1])
                    props = farm.api(f"builds/{build['buildid']}", property="binary_sizes")
                    sizes = props["builds"][0]["properties"]["binary_sizes"][0]
                    rows.append((app, variant, sum(sizes.values()), time.monotonic() - began))
                    print(f"{app:8} {variant:9} {sum(sizes.values()):>10,} bytes "
                          f"(built in {rows[-1][3]:.0f} s)", flush=True)
    print(f"\n{triple}:")
    for app in apps:
        base = next(size for a, v, size, _ in rows if a == app and v == "release")
        for _, variant, size, _ in (r for r in rows if r[0] == app):
            print(f"  {app:8} {variant:9} {size / 1024:9.0f} KB  ({size / base:.0%} of release)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
