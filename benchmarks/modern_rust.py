"""Rust 1.96 with std in the image, against -Zbuild-std per project.

    .venv/bin/python benchmarks/modern_rust.py [--target TRIPLE ...]

For each target (default: mips-unknown-linux-musl, a tier-3 target whose std
the image built once, and aarch64-unknown-linux-gnu), the crate with
dependencies (tests/fixtures/crates/deps-demo: regex and serde_json from
Debian's packaged crates) is built, release, cold (empty cache) and warm (after
a one-line change):

1. through the farm, force request to build done, and its cargo build step;
2. with a bare `docker run` of the same image doing what a project must do
   where no std exists for its target (cross-rs, rustup nightly):
   `cargo build -Zbuild-std=std,panic_abort` with RUSTC_BOOTSTRAP=1, std's
   dependencies taken from the image's std sources.

Also prints the size of the shipped (stripped) binary. The worker images must
be built (`farm images build`). Prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.container_builds import FIXTURES, Farm, cache_volume_name, image_of  # noqa: E402

TARGETS = ["mips-unknown-linux-musl", "aarch64-unknown-linux-gnu"]

# In the image: one directory source with Debian's crates and std's vendored
# dependencies, which -Zbuild-std resolves from crates.io otherwise.
BUILD_STD = """
set -eu
mkdir -p /tmp/crates
for crate in /usr/share/cargo/registry/* "$RUSTFARM_STD_SOURCE"/vendor/*; do
    [ -e "/tmp/crates/$(basename "$crate")" ] || ln -s "$crate" /tmp/crates/
done
cd /src
RUSTC_BOOTSTRAP=1 cargo build --release --offline --target {triple} \\
    -Zbuild-std=std,panic_abort \\
    --config 'source.crates-io.replace-with="all"' \\
    --config 'source.all.directory="/tmp/crates"'
"""


def touch_main(source: Path) -> None:
    main = source / "src" / "main.rs"
    main.write_text(main.read_text() + f"\n// edited {time.time()}\n")


def bare_build_std(source: Path, volume: str, triple: str) -> float:
    start = time.monotonic()
    done = subprocess.run(["docker", "run", "--rm", "--network", "none",
                           "-v", f"{source}:/src", "-v", f"{volume}:/home/rustbuild/cache",
                           "-e", "CARGO_TARGET_DIR=/home/rustbuild/cache/target",
                           image_of(triple), "bash", "-c", BUILD_STD.format(triple=triple)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"-Zbuild-std build for {triple} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", dest="targets")
    args = parser.parse_args()
    targets = args.targets or TARGETS
    rows = []
    with tempfile.TemporaryDirectory(prefix="rustfarm-bench-") as tmp:
        root = Path(tmp)
        deps = root / "deps-demo"
        shutil.copytree(FIXTURES / "deps-demo", deps, ignore=shutil.ignore_patterns("target"))
        (deps / "Cargo.lock").unlink()      # the -Zbuild-std build resolves its own
        subprocess.run(["chmod", "-R", "a+rwX", str(deps)], check=True)
        caches = [cache_volume_name("bench", "deps", t) for t in targets]
        subprocess.run(["docker", "volume", "rm", "-f", *caches], capture_output=True)
        pool = "".join(f"  {t}: {{pool: dk, image: \"{image_of(t)}\"}}\n" for t in targets)
        with Farm(root, f"""\
workers:
  dk: {{kind: docker, count: 1}}
targets:
{pool}projects:
  deps: {{source: {deps}, binaries: [deps-demo], test: false}}
""") as farm:
            for triple in targets:
                cold = farm.build_time("deps", triple)
                touch_main(deps)
                warm = farm.build_time("deps", triple)
                build = farm.api("builds", property="binary_sizes")["builds"][-1]
                size = build["properties"]["binary_sizes"][0]["deps-demo"]
                rows.append((triple, cold, warm, size))
        bare = []
        for triple in targets:
            volume = f"rustfarm-bench-buildstd-{triple}"
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)
            cold = bare_build_std(deps, volume, triple)
            touch_main(deps)
            warm = bare_build_std(deps, volume, triple)
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)
            bare.append((cold, warm))
        subprocess.run(["docker", "volume", "rm", "-f", *caches], capture_output=True)

    print("deps-demo (regex, serde_json), release, Rust 1.96:")
    print(f"  {'target':34}{'':34}{'cold':>9}{'warm':>9}")
    for (triple, cold, warm, size), (bare_cold, bare_warm) in zip(rows, bare):
        print(f"  {triple:34}{'farm: force -> build done':34}{cold[0]:8.2f}s{warm[0]:8.2f}s")
        print(f"  {'':34}{'farm: cargo build step':34}{cold[1]:8.2f}s{warm[1]:8.2f}s")
        print(f"  {'':34}{'bare cargo -Zbuild-std':34}{bare_cold:8.2f}s{bare_warm:8.2f}s")
        print(f"  {'':34}{'shipped binary (stripped)':34}{size / 1024:8.0f} KB")


if __name__ == "__main__":
    main()
