"""`farm images build|push|pull|list`: the command line over the images API.

The `farm` command registers these with :func:`add_commands` and calls the
handler the parser sets as ``handler``::

    args = parser.parse_args()
    return args.handler(args, pins=farmfile_pins, docker_host=farmfile_docker_host)

``pins`` maps ``<triple>@<toolchain>`` to the image reference farm.yaml pins for
it (``rustfarm/<triple>:<toolchain>-<content-tag>``, perhaps behind a registry);
it may be empty. With pins, the commands work on the pinned targets and
toolchains unless --target or --toolchain says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Mapping, TextIO

from docker.errors import DockerException
from requests.exceptions import RequestException

from rustfarm.errors import FarmError
from rustfarm.progress import Progress


def add_commands(subparsers, parents=()) -> argparse.ArgumentParser:
    """Register ``images`` and its subcommands on a ``add_subparsers()`` object; each
    takes the options of ``parents`` (the `farm` command's global ones) too."""
    parents = list(parents)
    images = subparsers.add_parser(
        "images", parents=parents, help="build, push, pull and list the Docker worker images",
        description="The worker images: rustfarm/base, rustfarm/worker, one rustfarm/rust"
                    " per toolchain and one rustfarm/<target-triple> per target and toolchain"
                    " of rustfarm/targets.yaml.")
    commands = images.add_subparsers(dest="images_command", metavar="COMMAND", required=True)

    def targets_option(parser, verb):
        parser.add_argument("--target", action="append", dest="targets", metavar="TRIPLE",
                            help=f"{verb} this target's image and its parents (repeatable;"
                                 " default: those farm.yaml pins, or every target)")
        parser.add_argument("--toolchain", action="append", dest="toolchains",
                            metavar="VERSION",
                            help=f"{verb} the images of this Rust toolchain (repeatable;"
                                 " default: those farm.yaml pins, or the default toolchain)")

    build = commands.add_parser("build", parents=parents,
                                help="build what is not up to date, parents first")
    targets_option(build, "build")
    build.add_argument("-v", "--verbose", action="store_true",
                       help="print every line of build output")

    push = commands.add_parser("push", parents=parents,
                               help="push images with their content and date tags")
    push.add_argument("--registry", required=True, metavar="HOST:PORT")
    targets_option(push, "push")

    pull = commands.add_parser("pull", parents=parents,
                               help="pull the current images from a registry")
    pull.add_argument("--registry", required=True, metavar="HOST:PORT")
    targets_option(pull, "pull")

    pin = commands.add_parser(
        "pin", parents=parents,
        help="point farm.yaml's image pins at the current content tags")
    targets_option(pin, "pin")

    listing = commands.add_parser(
        "list", parents=parents,
        help="images here and in a registry, farm.yaml's pins and which are stale")
    listing.add_argument("--registry", metavar="HOST:PORT",
                         help="also show what this registry holds")

    recipes = commands.add_parser(
        "recipes", parents=parents,
        help="list every image with its content tag, or print one image's Dockerfile")
    recipes.add_argument("image", nargs="?", metavar="NAME[@TOOLCHAIN]",
                         help="base, worker, rust@1.96, a target triple (@toolchain: another"
                              " than the default)")

    images.set_defaults(handler=handle)
    return images


def handle(args: argparse.Namespace, pins: Mapping[str, str] | None = None,
           docker_host: str | None = None, out: TextIO | None = None) -> int:
    """Run one ``farm images`` command; returns the exit status."""
    out = out or sys.stdout
    try:
        return _run(args, dict(pins or {}), docker_host, out)
    except FarmError as exc:
        out.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DockerException, RequestException) as exc:
        out.flush()
        print(f"error: the Docker engine failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def chosen_images(catalog, pins: dict[str, str], targets: list[str] | None,
                  toolchains: list[str] | None) -> list[str] | None:
    """Recipe keys of the target images a command works on; None: every image of
    the default toolchain."""
    if targets:
        return catalog.target_keys(targets, toolchains)
    if toolchains:
        pinned = {key.partition("@")[0] for key in pins}
        triples = [t.triple for t in catalog.table if not pinned or t.triple in pinned]
        for version in toolchains:
            catalog.target_keys([], [version])               # an unknown one fails here
        return [f"{triple}@{version}" for version in toolchains for triple in triples
                if version in catalog.table.get(triple).toolchains]
    if pins:
        return [key for key in pins if key in catalog.recipes] or None
    return None


def _run(args, pins: dict[str, str], docker_host: str | None, out: TextIO) -> int:
    from rustfarm.plumbing import connect
    from .recipes import current_catalog, describe

    catalog = current_catalog()
    if args.images_command == "recipes":
        out.write(describe(catalog, args.image))
        return 0
    # An unknown target or toolchain fails here, before Docker is asked anything.
    names = chosen_images(catalog, pins, getattr(args, "targets", None),
                          getattr(args, "toolchains", None))
    if args.images_command == "pin":
        return _pin(args, names, out)
    client = connect(docker_host)
    progress = Progress(out=out, verbose=getattr(args, "verbose", False))
    command = args.images_command
    if command == "build":
        from .build import build_images
        build_images(client, names, catalog=catalog, progress=progress)
    elif command == "push":
        from .registry import push_images
        push_images(client, args.registry, names, catalog=catalog, progress=progress)
    elif command == "pull":
        from .registry import pull_images
        pull_images(client, args.registry, names, catalog=catalog, progress=progress)
    elif command == "list":
        from .inventory import format_inventory, inventory
        out.write(format_inventory(inventory(client, pins, args.registry)) + "\n")
    return 0


def _pin(args, names: list[str] | None, out: TextIO) -> int:
    from rustfarm.pins import repin

    from .recipes import current_reference

    config = getattr(args, "config", None)
    if config is None:
        raise FarmError("pin edits a farm.yaml: run it as `farm images pin`")
    changes = repin(config, current_reference, names)
    for triple, old, new in changes:
        out.write(f"{triple}: {old} -> {new}\n")
    out.write(f"{config}: {len(changes)} pins updated\n" if changes
              else f"{config}: every pin is current\n")
    return 0
