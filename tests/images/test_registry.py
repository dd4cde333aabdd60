"""Pushing to and pulling from a real local registry (Debian's docker-registry)."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest

from rustfarm.images.inventory import format_inventory, inventory
from rustfarm.progress import Progress
from rustfarm.images.registry import RegistryError, pull_images, push_images, registry_tags
from tests.support.registry import LocalRegistry, ensure_registry_binary

pytestmark = pytest.mark.docker


@pytest.fixture
def registry(tmp_path, docker_client):
    ensure_registry_binary()
    running = LocalRegistry(tmp_path / "registry").start()
    try:
        yield running
    finally:
        running.stop()
        for image in docker_client.images.list(name=f"{running.address}/rustfarm/*"):
            for tag in image.tags:
                if tag.startswith(running.address):
                    docker_client.images.remove(tag)


def test_push_then_pull_the_base_image(built_chain, docker_client, registry):
    catalog = built_chain.catalog
    content = catalog.content_tag("base")
    local = docker_client.images.get(catalog.reference("base"))
    date = local.labels["org.rustfarm.date-tag"]
    output = io.StringIO()

    pushed = push_images(docker_client, registry.address, ["base"], catalog=catalog,
                         progress=Progress(out=output))
    remote = f"{registry.address}/rustfarm/base"
    assert pushed == [f"{remote}:{content}", f"{remote}:{date}"]
    text = output.getvalue()
    assert f"==> pushing {remote}:{content}" in text
    assert f"<== pushed {remote}:{content} in " in text
    assert "digest: sha256:" in text

    assert registry_tags(registry.address) == {"rustfarm/base": sorted([content, date])}
    manifest = urllib.request.Request(
        f"http://{registry.address}/v2/rustfarm/base/manifests/{content}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(manifest, timeout=10) as response:
        layers = json.load(response)["layers"]
    assert len(layers) == len(local.attrs["RootFS"]["Layers"])

    # Pull back: drop the registry's names here first, then fetch by content tag.
    for tag in (content, date):
        docker_client.images.remove(f"{remote}:{tag}")
    pulled = pull_images(docker_client, registry.address, ["base"], catalog=catalog,
                         progress=Progress(out=output))
    assert pulled == [catalog.reference("base")]
    assert docker_client.images.get(f"{remote}:{content}").id == local.id

    listing = inventory(docker_client, registry=registry.address, catalog=catalog)
    base = listing.get("base")
    assert base.pushed and base.built
    assert listing.get("worker").pushed is False
    table = format_inventory(listing)
    assert f"registry: {registry.address}" in table
    base_line = next(line for line in table.splitlines() if line.startswith("rustfarm/base "))
    assert base_line.split()[:4] == ["rustfarm/base", content, "yes", f"({date})"]


def test_pushing_what_is_not_built_is_refused_by_name(built_chain, docker_client, registry,
                                                     tmp_path):
    import shutil

    from rustfarm.images.recipes import IMAGES_DIR, load_catalog
    root = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    with (root / "base/make-rootfs.sh").open("a") as script:
        script.write("# another base\n")
    unbuilt = load_catalog(root)
    with pytest.raises(RegistryError, match=r"not built here.*rustfarm/base:"):
        push_images(docker_client, registry.address, ["base"], catalog=unbuilt,
                    progress=Progress(out=io.StringIO()))


def test_an_unreachable_registry_is_a_clear_error():
    with pytest.raises(RegistryError, match="cannot read registry 127.0.0.1:9"):
        registry_tags("127.0.0.1:9")
