"""farm.yaml's image pins: current in the repository, and updated by `farm images pin`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rustfarm.farmfile import load
from rustfarm.images.recipes import current_catalog

REPO = Path(__file__).resolve().parents[2]
FARM = str(Path(sys.executable).parent / "farm")


def test_the_repository_farm_pins_the_current_recipes():
    # The base is always made here, so the tags are the same on every machine.
    catalog = current_catalog()
    pins = load(REPO / "farm.yaml").pinned_images()
    stale = {key: (image, catalog.reference(key)) for key, image in pins.items()
             if image != catalog.reference(key)}
    assert not stale, f"farm.yaml pins stale images (run `farm images pin`): {stale}"
    assert set(pins) == {f"{t.triple}@1.96" for t in catalog.table}


def test_pin_rewrites_only_stale_tags_and_keeps_the_rest(tmp_path):
    config = tmp_path / "farm.yaml"
    original = (REPO / "farm.yaml").read_text()
    current = load(REPO / "farm.yaml").targets["mipsel-unknown-linux-gnu"].image_for("1.96")
    config.write_text(original.replace(current, "rustfarm/mipsel-unknown-linux-gnu:1.96-0123456789ab")
                      .replace("examples/hello", str(REPO / "examples" / "hello")))
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    done = subprocess.run([FARM, "--config", str(config), "images", "pin"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"mipsel-unknown-linux-gnu@1.96: rustfarm/mipsel-unknown-linux-gnu:1.96-0123456789ab"
        f" -> {current}",
        f"{config}: 1 pins updated"]
    assert config.read_text() == original.replace("examples/hello",
                                                  str(REPO / "examples" / "hello"))
    again = subprocess.run([FARM, "--config", str(config), "images", "pin"],
                           capture_output=True, text=True, env=env)
    assert again.stdout == f"{config}: every pin is current\n"
