"""Building the chain: parents first, tagged and labelled, shared layers, nothing
rebuilt when up to date, and a broken recipe reported by image name."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rustfarm.images import tags
from rustfarm.images.build import BuildError, build_images
from rustfarm.progress import Progress
from rustfarm.images.recipes import IMAGES_DIR, load_catalog

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def built_recipes(built_chain):
    return [built_chain.catalog.get(o.name) for o in built_chain.outcomes]


def test_every_image_has_its_content_and_date_tags_and_labels(built_chain, docker_client):
    catalog = built_chain.catalog
    keys = [o.name for o in built_chain.outcomes]
    assert keys[:3] == ["base", "worker", "rust@1.96"]
    assert set(keys) >= {f"{t.triple}@1.96" for t in catalog.table}
    for recipe in built_recipes(built_chain):
        image = docker_client.images.get(catalog.reference(recipe.key))
        labels = image.labels
        assert labels[tags.LABEL_CONTENT] == catalog.content_tag(recipe.key)
        assert labels[tags.LABEL_TITLE] == recipe.repository
        date = labels[tags.LABEL_DATE]
        assert tags.DATE_TAG.match(date)
        if recipe.parent:
            assert labels[tags.LABEL_PARENT] == catalog.reference(recipe.parent)
        if recipe.target:
            assert labels[tags.LABEL_TARGET] == recipe.target.triple
        if recipe.toolchain:
            assert labels[tags.LABEL_TOOLCHAIN] == recipe.toolchain
            assert date.startswith(f"{recipe.toolchain}-")
        # The date tag points at the newest build of that day, this one or a later rebuild.
        dated = docker_client.images.get(f"{recipe.repository}:{date}")
        assert dated.labels[tags.LABEL_DATE] == date


def test_images_share_their_parents_layers(built_chain, docker_client):
    catalog = built_chain.catalog

    def layers(name):
        return docker_client.images.get(catalog.reference(name)).attrs["RootFS"]["Layers"]

    for recipe in built_recipes(built_chain):
        if recipe.parent:
            parent = layers(recipe.parent)
            assert layers(recipe.key)[:len(parent)] == parent, recipe.key
    # A target image adds its own layer on its toolchain's (plus one for the
    # shared scripts, one for sccache, one for the check's zig cache, one for the
    # audit tools and one for the worker tool).
    assert len(layers("aarch64-unknown-linux-gnu")) - len(layers("rust")) <= 6


def test_worker_runs_as_rustbuild_with_the_worker_as_command(built_chain, docker_client):
    config = docker_client.images.get(built_chain.reference("worker")).attrs["Config"]
    assert config["User"] == "rustbuild"
    assert not config["Entrypoint"]
    assert config["Cmd"] == ["/usr/local/bin/rustfarm-worker"]
    rust = docker_client.images.get(built_chain.reference("rust")).attrs["Config"]
    assert rust["User"] == "rustbuild"


def test_second_build_reports_everything_up_to_date(built_chain, docker_client):
    output = io.StringIO()
    outcomes = build_images(docker_client, progress=Progress(out=output))
    assert {o.state for o in outcomes} == {"up to date"}
    text = output.getvalue()
    for outcome in outcomes:
        assert f"{built_chain.reference(outcome.name)} is up to date" in text
    assert f"0 built, {len(outcomes)} up to date" in text


def test_build_of_one_target_covers_only_its_parents(built_chain, docker_client):
    output = io.StringIO()
    outcomes = build_images(docker_client, ["aarch64-unknown-linux-gnu"],
                            progress=Progress(out=output))
    assert [o.name for o in outcomes] == ["base", "worker", "rust@1.96",
                                          "aarch64-unknown-linux-gnu@1.96"]
    outcomes = build_images(docker_client, ["x86_64-unknown-linux-gnu@1.63"],
                            progress=Progress(out=output))
    # Its audit tools are built by the default toolchain's image.
    assert [o.name for o in outcomes] == ["base", "worker", "rust@1.96", "rust@1.63",
                                          "x86_64-unknown-linux-gnu@1.63"]


@pytest.fixture
def broken_recipes(tmp_path):
    """A copy of images/ whose x86_64 toolchain install fails after some output."""
    root = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    script = root / "scripts/install-target.sh"
    script.write_text(script.read_text().replace(
        "set -eu\n", "set -eu\necho 'checking the cross toolchain'\n"
                     "echo 'E: gcc-broken-cross has no installation candidate' >&2\nexit 100\n", 1))
    return root


def test_broken_recipe_fails_naming_the_image_with_its_last_output(
        built_chain, docker_client, broken_recipes):
    target = "x86_64-unknown-linux-gnu"
    broken = load_catalog(broken_recipes)
    assert broken.content_tag("rust") == built_chain.catalog.content_tag("rust")
    output = io.StringIO()
    with pytest.raises(BuildError) as failure:
        build_images(docker_client, [target], root=broken_recipes, progress=Progress(out=output))
    error = failure.value
    assert error.image == broken.reference(target)
    assert "returned a non-zero code: 100" in error.reason
    assert any("gcc-broken-cross has no installation candidate" in line for line in error.tail)
    message = str(error)
    assert message.startswith(f"building {broken.reference(target)} failed")
    assert f"==> building {broken.reference(target)}" in output.getvalue()
    assert docker_client.images.list(name=broken.reference(target)) == []


def test_cli_reports_a_broken_recipe_without_a_traceback(built_chain, docker_client,
                                                        broken_recipes, tmp_path):
    env = {**os.environ, "RUSTFARM_IMAGES_DIR": str(broken_recipes)}
    # Where there is no farm.yaml, `farm images` works on the recipes' images.
    done = subprocess.run([str(Path(sys.executable).parent / "farm"), "images", "build",
                           "--target", "x86_64-unknown-linux-gnu"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("error: building rustfarm/x86_64-unknown-linux-gnu:")
    assert "gcc-broken-cross has no installation candidate" in done.stderr
    assert "rustfarm/rust:" in done.stdout and "is up to date" in done.stdout
