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
from rustfarm.images.progress import Progress
from rustfarm.images.recipes import IMAGES_DIR, load_catalog

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def test_every_image_has_its_content_and_date_tags_and_labels(built_chain, docker_client):
    catalog = built_chain.catalog
    assert [o.name for o in built_chain.outcomes] == [r.name for r in catalog]
    for recipe in catalog:
        image = docker_client.images.get(catalog.reference(recipe.name))
        labels = image.labels
        assert labels[tags.LABEL_CONTENT] == catalog.content_tag(recipe.name)
        assert labels[tags.LABEL_TITLE] == recipe.repository
        date = labels[tags.LABEL_DATE]
        assert tags.DATE_TAG.match(date)
        if recipe.parent:
            assert labels[tags.LABEL_PARENT] == catalog.reference(recipe.parent)
        if recipe.target:
            assert labels[tags.LABEL_TARGET] == recipe.target.triple
        # The date tag points at the newest build of that day, this one or a later rebuild.
        dated = docker_client.images.get(f"{recipe.repository}:{date}")
        assert dated.labels[tags.LABEL_DATE] == date


def test_images_share_their_parents_layers(built_chain, docker_client):
    catalog = built_chain.catalog

    def layers(name):
        return docker_client.images.get(catalog.reference(name)).attrs["RootFS"]["Layers"]

    for recipe in catalog:
        if recipe.parent:
            parent = layers(recipe.parent)
            assert layers(recipe.name)[:len(parent)] == parent, recipe.name
    # A toolchain image adds one layer of its own on rustfarm/rust (plus one
    # for the shared install script).
    assert len(layers("aarch64-unknown-linux-gnu")) - len(layers("rust")) <= 2


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
    for recipe in built_chain.catalog:
        assert f"{built_chain.reference(recipe.name)} is up to date" in text
    assert f"0 built, {len(outcomes)} up to date" in text


def test_build_of_one_target_covers_only_its_parents(built_chain, docker_client):
    output = io.StringIO()
    outcomes = build_images(docker_client, ["aarch64-unknown-linux-gnu"],
                            progress=Progress(out=output))
    assert [o.name for o in outcomes] == ["base", "worker", "rust", "aarch64-unknown-linux-gnu"]


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
    broken = load_catalog(broken_recipes, built_chain.catalog.base_source)
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
                                                        broken_recipes):
    env = {**os.environ, "RUSTFARM_IMAGES_DIR": str(broken_recipes),
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "rustfarm.images", "build",
                           "--target", "x86_64-unknown-linux-gnu"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("error: building rustfarm/x86_64-unknown-linux-gnu:")
    assert "gcc-broken-cross has no installation candidate" in done.stderr
    assert "rustfarm/rust:" in done.stdout and "is up to date" in done.stdout


def test_base_is_built_from_debian_slim_when_the_engine_has_it(built_chain, docker_client):
    """The slim path, with our own base standing in for debian:bookworm-slim."""
    from rustfarm.images.recipes import SLIM_IMAGE, current_catalog, detect_base_source

    if any(docker_client.images.list(name=SLIM_IMAGE)):
        pytest.skip(f"{SLIM_IMAGE} is really here; the chain is already built on it")
    stand_in = docker_client.images.get(built_chain.reference("base"))
    stand_in.tag("debian", "bookworm-slim")
    slim_base = None
    try:
        source = detect_base_source(docker_client)
        assert (source.kind, source.image_id) == ("slim", stand_in.id)
        catalog = current_catalog(docker_client)
        assert catalog.content_tag("base") != built_chain.catalog.content_tag("base")
        slim_base = catalog.reference("base")
        output = io.StringIO()
        outcomes = build_images(docker_client, ["base"], catalog=catalog,
                                progress=Progress(out=output))
        assert [o.state for o in outcomes] == ["built"]
        assert f"==> building {slim_base} on debian:bookworm-slim" in output.getvalue()
        image = docker_client.images.get(slim_base)
        assert image.labels[tags.LABEL_PARENT] == "debian:bookworm-slim"
        run = docker_client.containers.run(slim_base, ["cat", "/etc/apt/apt.conf.d/99rustfarm"],
                                           remove=True, name=f"rustfarm-imgtest-slim-{os.getpid()}")
        assert b'APT::Install-Recommends "false";' in run
    finally:
        docker_client.images.remove(SLIM_IMAGE)
        if slim_base and docker_client.images.list(name=slim_base):
            # Its build moved rustfarm/base's date tag; give it back to the real
            # base, then removing the last tag removes the slim-based image.
            stand_in.tag("rustfarm/base", stand_in.labels[tags.LABEL_DATE])
            docker_client.images.remove(slim_base)
