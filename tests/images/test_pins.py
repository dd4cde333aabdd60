"""farm.yaml's image pins: current in the repository, and updated by `farm images pin`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rustfarm.farmfile import load
from rustfarm.images.recipes import ROOTFS, load_catalog, recipes_dir

REPO = Path(__file__).resolve().parents[2]
FARM = str(Path(sys.executable).parent / "farm")


def test_the_repository_farm_pins_the_current_recipes():
    # Pins are made where no registry offers debian:bookworm-slim (the base is built here).
    catalog = load_catalog(recipes_dir(), ROOTFS)
    farm = load(REPO / "farm.yaml")
    stale = {t.triple: (t.image, catalog.reference(t.triple)) for t in farm.targets.values()
             if t.image != catalog.reference(t.triple)}
    assert not stale, f"farm.yaml pins stale images (run `farm images pin`): {stale}"


def test_pin_rewrites_only_stale_tags_and_keeps_the_rest(tmp_path):
    config = tmp_path / "farm.yaml"
    original = (REPO / "farm.yaml").read_text()
    current = load(REPO / "farm.yaml").targets["mipsel-unknown-linux-gnu"].image
    config.write_text(original.replace(current, "rustfarm/mipsel-unknown-linux-gnu:0123456789ab")
                      .replace("examples/hello", str(REPO / "examples" / "hello")))
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    done = subprocess.run([FARM, "--config", str(config), "images", "pin"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"mipsel-unknown-linux-gnu: rustfarm/mipsel-unknown-linux-gnu:0123456789ab -> {current}",
        f"{config}: 1 pins updated"]
    assert config.read_text() == original.replace("examples/hello",
                                                  str(REPO / "examples" / "hello"))
    again = subprocess.run([FARM, "--config", str(config), "images", "pin"],
                           capture_output=True, text=True, env=env)
    assert again.stdout == f"{config}: every pin is current\n"
