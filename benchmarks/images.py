"""Image sizes and build times: the chain built (cold with --cold) and then
checked again when up to date.

    python benchmarks/images.py            # build what is missing, then the up-to-date pass
    python benchmarks/images.py --cold     # remove every rustfarm/* image first
    python benchmarks/images.py --target mipsel-unknown-linux-gnu

--cold removes only images named rustfarm/<name> (and the untagged build
stages they left), not the wheel cache: the host's downloads are not part of
what is measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rustfarm.images import tags  # noqa: E402
from rustfarm.images.build import build_images  # noqa: E402
from rustfarm.plumbing import connect  # noqa: E402
from rustfarm.progress import Progress, duration  # noqa: E402
from rustfarm.images.recipes import NAMESPACE, current_catalog  # noqa: E402


def remove_rustfarm_images(client) -> int:
    """Untag every rustfarm/* image; the engine deletes an image with its last tag."""
    removed = 0
    for image in client.images.list(name=f"{NAMESPACE}/*"):
        for reference in image.tags:
            if reference.startswith(f"{NAMESPACE}/"):
                try:
                    client.images.remove(reference)
                    removed += 1
                except docker.errors.ImageNotFound:
                    pass
    # Build stages of the multi-stage worker recipe stay behind untagged, with
    # the labels of rustfarm/base; without them "cold" would reuse their cache.
    client.images.prune(filters={"dangling": True, "label": tags.LABEL_CONTENT})
    return removed


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def report(client, outcomes) -> None:
    catalog = current_catalog()
    print(f"\n{'image':50} {'state':11} {'time':>7} {'size':>9} {'own layers':>11}")
    total_unique = 0
    for outcome in outcomes:
        recipe = catalog.get(outcome.name)
        image = client.images.get(outcome.reference)
        size = image.attrs["Size"]
        parent_size = (client.images.get(catalog.reference(recipe.parent)).attrs["Size"]
                       if recipe.parent else 0)
        own = size - parent_size
        total_unique += own
        elapsed = duration(outcome.seconds) if outcome.state == "built" else "-"
        name = recipe.repository + (f":{recipe.toolchain}" if recipe.toolchain else "")
        print(f"{name:50} {outcome.state:11} {elapsed:>7} {megabytes(size):>9}"
              f" {megabytes(own):>11}")
    print(f"{'all images together (shared layers once)':50} {'':11} {'':>7} {'':>9}"
          f" {megabytes(total_unique):>11}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="remove rustfarm/* images first")
    parser.add_argument("--target", action="append", dest="targets",
                        help="this target's image (with TRIPLE@TOOLCHAIN another toolchain's)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no build progress lines")
    args = parser.parse_args()
    client = connect()
    if args.cold:
        print(f"removed {remove_rustfarm_images(client)} rustfarm image tags")
    progress = Progress(out=open("/dev/null", "w") if args.quiet else sys.stdout)

    started = time.monotonic()
    outcomes = build_images(client, args.targets, progress=progress)
    first = time.monotonic() - started
    report(client, outcomes)
    built = [o for o in outcomes if o.state == "built"]
    print(f"\nbuild: {len(built)} built, {len(outcomes) - len(built)} up to date,"
          f" {first:.1f} s")

    started = time.monotonic()
    again = build_images(client, args.targets, progress=Progress(out=open("/dev/null", "w")))
    second = time.monotonic() - started
    assert all(o.state == "up to date" for o in again)
    print(f"second build (everything up to date): {second:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
