"""`farm images ...` as the farm CLI wires it: add_commands plus a handler that
receives the parsed arguments, farm.yaml's pins and the Docker host."""

from __future__ import annotations

import argparse
import io

import pytest

from rustfarm.images.recipes import current_reference
from rustfarm.images.cli import add_commands, handle


def parser() -> argparse.ArgumentParser:
    farm = argparse.ArgumentParser(prog="farm")
    add_commands(farm.add_subparsers(dest="command", required=True))
    return farm


def test_add_commands_registers_build_push_pull_and_list():
    args = parser().parse_args(["images", "build", "--target", "mipsel-unknown-linux-gnu",
                                "--target", "aarch64-unknown-linux-gnu"])
    assert args.handler is handle
    assert (args.images_command, args.targets) == (
        "build", ["mipsel-unknown-linux-gnu", "aarch64-unknown-linux-gnu"])
    args = parser().parse_args(["images", "push", "--registry", "127.0.0.1:5000"])
    assert (args.images_command, args.registry, args.targets) == ("push", "127.0.0.1:5000", None)
    assert parser().parse_args(["images", "list"]).registry is None
    assert parser().parse_args(["images", "pull", "--registry", "r:1"]).images_command == "pull"
    with pytest.raises(SystemExit):
        parser().parse_args(["images", "push"])  # --registry is required


def test_an_unknown_target_or_toolchain_is_reported_without_touching_docker(capsys):
    args = parser().parse_args(["images", "build", "--target", "sparc64-unknown-linux-gnu"])
    assert handle(args, pins={}, docker_host="tcp://127.0.0.1:9") == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no image named 'sparc64-unknown-linux-gnu'; images: base,")
    args = parser().parse_args(["images", "build", "--target", "mips-unknown-linux-musl",
                                "--toolchain", "1.63"])
    assert handle(args, pins={}, docker_host="tcp://127.0.0.1:9") == 1
    assert capsys.readouterr().err.startswith(
        "error: toolchain 1.63 cannot build mips-unknown-linux-musl: no std for it")
    args = parser().parse_args(["images", "build", "--toolchain", "1.70"])
    assert handle(args, pins={}, docker_host="tcp://127.0.0.1:9") == 1
    assert capsys.readouterr().err.startswith("error: unknown toolchain '1.70'; toolchains: 1.96")


def test_commands_work_on_what_farm_yaml_pins_unless_told_otherwise():
    from rustfarm.images.cli import chosen_images
    from rustfarm.images.recipes import current_catalog
    catalog = current_catalog()
    pins = {"mipsel-unknown-linux-gnu@1.96": "rustfarm/mipsel-unknown-linux-gnu:1.96-x",
            "mipsel-unknown-linux-gnu@1.63": "rustfarm/mipsel-unknown-linux-gnu:1.63-x",
            "mips-unknown-linux-musl@1.96": "rustfarm/mips-unknown-linux-musl:1.96-x"}
    assert chosen_images(catalog, pins, None, None) == list(pins)
    assert chosen_images(catalog, {}, None, None) is None       # every default image
    assert chosen_images(catalog, pins, None, ["1.63"]) == ["mipsel-unknown-linux-gnu@1.63"]
    assert chosen_images(catalog, pins, ["aarch64-unknown-linux-musl"], None) == \
        ["aarch64-unknown-linux-musl@1.96"]


def test_an_unreachable_docker_host_is_a_message_not_a_traceback(capsys):
    args = parser().parse_args(["images", "list"])
    assert handle(args, pins={}, docker_host="tcp://127.0.0.1:9") == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no Docker engine answers at tcp://127.0.0.1:9")
    assert "Traceback" not in error


@pytest.mark.docker
def test_list_shows_pins_and_which_are_stale(built_chain, docker_client):
    current = current_reference("aarch64-unknown-linux-gnu")
    assert current == built_chain.reference("aarch64-unknown-linux-gnu")
    pins = {"mipsel-unknown-linux-gnu@1.96": "rustfarm/mipsel-unknown-linux-gnu:1.96-0123456789ab",
            "aarch64-unknown-linux-gnu@1.96": current,
            "sparc64-unknown-linux-gnu@1.96": "rustfarm/sparc64-unknown-linux-gnu:1.96-0123456789ab"}
    out = io.StringIO()
    args = parser().parse_args(["images", "list"])
    assert handle(args, pins=pins, docker_host="unix:///var/run/docker.sock", out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["IMAGE", "CURRENT", "TAG", "HERE", "REGISTRY", "PINNED", "STATE"]

    def row(name, toolchain="1.96"):
        return next(line for line in lines if line.startswith(f"rustfarm/{name} ")
                    and f" {toolchain}-" in line)

    assert row("mipsel-unknown-linux-gnu").endswith("1.96-0123456789ab  pin stale")
    assert row("aarch64-unknown-linux-gnu").endswith(f"{current.rsplit(':', 1)[1]}  pinned")
    assert row("rust").endswith("up to date")
    assert row("mipsel-unknown-linux-gnu", "1.63").endswith("not built")
    assert ("1 stale pin(s) in farm.yaml: mipsel-unknown-linux-gnu@1.96 pins 1.96-0123456789ab,"
            f" current is {built_chain.catalog.content_tag('mipsel-unknown-linux-gnu')}") in lines
    assert ("farm.yaml pins sparc64-unknown-linux-gnu@1.96 to rustfarm/sparc64-unknown-linux-gnu:"
            "1.96-0123456789ab, but no image recipe has that name") in lines


def test_recipes_lists_the_images_or_prints_one_dockerfile_without_docker(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    farm = str(Path(sys.executable).parent / "farm")
    # No farm.yaml here, and no Docker asked: the recipes alone.
    listing = subprocess.run([farm, "images", "recipes"], cwd=tmp_path, capture_output=True,
                             text=True, env={"PATH": "/usr/bin:/bin",
                                             "DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert listing.returncode == 0, listing.stderr
    assert current_reference("mipsel-unknown-linux-musl") in listing.stdout
    assert "rustfarm/base:" in listing.stdout
    dockerfile = subprocess.run([farm, "images", "recipes", "mipsel-unknown-linux-musl"],
                                cwd=tmp_path, capture_output=True, text=True)
    assert dockerfile.returncode == 0 and dockerfile.stdout.startswith("#")
    assert "\nFROM " in dockerfile.stdout and "mipsel-unknown-linux-musl" in dockerfile.stdout
    unknown = subprocess.run([farm, "images", "recipes", "sparc64-unknown-linux-gnu"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.startswith("error: no image named 'sparc64-unknown-linux-gnu'")
