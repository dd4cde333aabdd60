"""The recipes, the targets table, content tags and the shell scripts: no Docker needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rustfarm.images import current_reference, tags
from rustfarm.images.recipes import (IMAGES_DIR, ROOTFS, BaseSource, RecipeError,
                                     copied_sources, load_catalog)
from rustfarm.images.targets import UNAVAILABLE, TargetError, get_target, load_targets, markdown_table
from rustfarm.images.wheels import read_pins
from tests.support.docker_engine import unavailable

EXPECTED_TARGETS = {
    "mipsel-unknown-linux-gnu", "mips64el-unknown-linux-gnuabi64",
    "armv7-unknown-linux-gnueabihf", "armv5te-unknown-linux-gnueabi",
    "aarch64-unknown-linux-gnu", "i686-unknown-linux-gnu", "powerpc64le-unknown-linux-gnu",
    "s390x-unknown-linux-gnu", "x86_64-unknown-linux-gnu", "x86_64-pc-windows-gnu",
    "wasm32-unknown-unknown",
}


def copy_recipes(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def test_table_lists_every_target_once_and_no_big_endian_mips():
    targets = load_targets()
    assert {t.triple for t in targets} == EXPECTED_TARGETS
    assert not any(t.triple.startswith(("mips-", "mips64-")) for t in targets)
    with pytest.raises(TargetError, match="-Zbuild-std"):
        get_target("mips-unknown-linux-gnu")
    with pytest.raises(TargetError, match="armv5te-unknown-linux-gnueabi"):
        get_target("arm-unknown-linux-gnueabi")


@pytest.mark.parametrize("target", load_targets(), ids=lambda t: t.triple)
def test_toolchain_dockerfile_sets_the_targets_variables(target):
    catalog = load_catalog()
    recipe = catalog.get(target.triple)
    assert recipe.parent == "rust"
    dockerfile = recipe.dockerfile
    assert "@" not in dockerfile, "a placeholder was left unrendered"
    upper = target.triple.upper().replace("-", "_")
    lower = target.triple.replace("-", "_")
    assert f"CARGO_TARGET_{upper}_LINKER={target.linker}" in dockerfile
    assert f"RUSTFARM_TARGET={target.triple}" in dockerfile
    if target.debian_arch and not target.is_native:
        assert f"install-target.sh {target.debian_arch} libstd-rust-dev:{target.debian_arch}" in dockerfile
    if target.qemu:
        assert target.triple.endswith(("-linux-gnu", "-linux-gnueabihf", "-linux-gnueabi",
                                       "-linux-gnuabi64"))
        assert f"CARGO_TARGET_{upper}_RUNNER={target.qemu}" in dockerfile
        assert f"CC_{lower}={target.gnu}-gcc" in dockerfile
    else:
        assert "_RUNNER=" not in dockerfile
    # The template is shared: apart from the table's values, all are the same.
    assert len(dockerfile.splitlines()) < 25


def test_linux_cross_targets_have_qemu_runners_and_others_say_why_not():
    for target in load_targets():
        if "linux" in target.triple and not target.is_native:
            assert target.qemu and target.runs_here, target.triple
        if target.binary.format != "elf":
            assert not target.qemu


def test_copied_sources_reads_copy_lines_but_not_stage_copies():
    dockerfile = ("FROM x AS a\nCOPY --chown=u:g a.sh \\\n    b.sh /dst/\n"
                  "COPY --from=a /opt /opt\nADD [\"c.txt\", \"/c\"]\nRUN echo COPY no\n")
    assert copied_sources(dockerfile) == ["a.sh", "b.sh", "c.txt"]


def test_each_recipe_hashes_exactly_what_it_copies():
    catalog = load_catalog()
    worker = catalog.get("worker")
    assert [path for path, _ in worker.files] == [
        "scripts/add-rustbuild-user.sh", "scripts/apt-install.sh",
        "worker/buildbot.tac", "worker/entrypoint.sh", "worker/requirements.txt"]
    assert {pin.name for pin in worker.wheels} >= {"buildbot-worker", "twisted"}
    assert any(key.startswith("wheel buildbot-worker==4.3.0") for key, _ in worker.inputs())
    assert catalog.get("base").files[0][0] == "base/make-rootfs.sh"


def test_content_tags_are_stable_and_change_with_any_input(tmp_path):
    root = copy_recipes(tmp_path)
    before = load_catalog(root)
    assert {r.name: before.content_tag(r.name) for r in before} == \
        {r.name: before.content_tag(r.name) for r in load_catalog(root)}
    assert all(tags.is_content_tag(before.content_tag(r.name)) for r in before)

    # A shared script used by the worker changes every image below it.
    with (root / "scripts/add-rustbuild-user.sh").open("a") as script:
        script.write("# changed\n")
    after = load_catalog(root)
    assert after.content_tag("base") == before.content_tag("base")
    for name in ["worker", "rust", "mipsel-unknown-linux-gnu"]:
        assert after.content_tag(name) != before.content_tag(name)

    # One row of the table changes one image only.
    table = root / "targets.yaml"
    table.write_text(table.read_text().replace("gcc-s390x-linux-gnu", "gcc-s390x-linux-gnu make"))
    again = load_catalog(root)
    changed = [r.name for r in again if again.content_tag(r.name) != after.content_tag(r.name)]
    assert changed == ["s390x-unknown-linux-gnu"]

    # The executable bit is part of what is copied.
    os.chmod(root / "scripts/install-target.sh", 0o644)
    assert load_catalog(root).content_tag("aarch64-unknown-linux-gnu") != \
        again.content_tag("aarch64-unknown-linux-gnu")


def test_base_from_debian_slim_is_another_recipe():
    rootfs = load_catalog(base_source=ROOTFS)
    slim = load_catalog(base_source=BaseSource("slim", "sha256:" + "ab" * 32))
    assert rootfs.get("base").is_rootfs and not slim.get("base").is_rootfs
    assert slim.parent_reference(slim.get("base")) == "debian:bookworm-slim"
    for recipe in rootfs:
        assert rootfs.content_tag(recipe.name) != slim.content_tag(recipe.name)


def test_a_dockerfile_copying_a_missing_file_is_named(tmp_path):
    root = copy_recipes(tmp_path)
    dockerfile = root / "rust/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY rust/missing.toml /tmp/\n")
    with pytest.raises(RecipeError, match=r"rustfarm/rust: .*rust/missing.toml"):
        load_catalog(root)


def test_current_reference_names_the_target_image_and_its_content_tag():
    reference = current_reference("mipsel-unknown-linux-gnu")
    repository, tag = tags.split_reference(reference)
    assert repository == "rustfarm/mipsel-unknown-linux-gnu"
    assert tags.is_content_tag(tag)


def test_split_reference_handles_registries_and_digests():
    assert tags.split_reference("127.0.0.1:5000/rustfarm/x:abc") == ("127.0.0.1:5000/rustfarm/x", "abc")
    assert tags.split_reference("127.0.0.1:5000/rustfarm/x") == ("127.0.0.1:5000/rustfarm/x", None)
    assert tags.split_reference("rustfarm/x@sha256:00") == ("rustfarm/x", "sha256:00")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", tags.date_tag())


def test_worker_wheels_are_pinned_with_hashes():
    pins = read_pins(IMAGES_DIR / "worker/requirements.txt")
    versions = {pin.name: pin.version for pin in pins}
    assert versions["buildbot-worker"] == "4.3.0"
    assert all(len(pin.sha256) == 64 for pin in pins)


def test_readme_shows_the_current_targets_table():
    readme = (IMAGES_DIR / "README.md").read_text()
    assert markdown_table() in readme, \
        "regenerate the table: python -m rustfarm.images.targets"
    for triple in UNAVAILABLE:
        assert triple in readme


def test_shell_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "install", "-y", "-qq", "shellcheck"],
                        ["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "shellcheck"]):
            if subprocess.run(command, capture_output=True, env=env).returncode == 0 \
                    and shutil.which("shellcheck"):
                break
        shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        unavailable("shellcheck is not installed")
    scripts = sorted(IMAGES_DIR.rglob("*.sh"))
    assert len(scripts) >= 5
    checked = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
