"""The recipes, the targets table, content tags and the shell scripts: no Docker needed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from rustfarm.images import tags
from rustfarm.images.recipes import current_reference
from rustfarm.images.recipes import IMAGES_DIR, RecipeError, load_catalog
from rustfarm.images.dockerfiles import copied_sources
from rustfarm.images.wheels import read_pins
from rustfarm.targets import (TABLE_FILE, TargetError, cargo_target_variable, load_table,
                              markdown_table, target_table)
from tests.support.docker_engine import unavailable

MIPS_LINUX = {
    "mips-unknown-linux-gnu", "mipsel-unknown-linux-gnu", "mips64-unknown-linux-gnuabi64",
    "mips64el-unknown-linux-gnuabi64", "mips-unknown-linux-musl", "mipsel-unknown-linux-musl",
    "mips64-unknown-linux-muslabi64", "mips64el-unknown-linux-muslabi64",
}
EXPECTED_TARGETS = MIPS_LINUX | {
    "arm-unknown-linux-gnueabi", "armv5te-unknown-linux-gnueabi",
    "armv7-unknown-linux-gnueabihf", "armv7-unknown-linux-musleabihf",
    "aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl", "i686-unknown-linux-gnu",
    "x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "x86_64-pc-windows-gnu",
    "powerpc64le-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu", "s390x-unknown-linux-gnu",
    "wasm32-unknown-unknown",
}


def copy_recipes(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def test_table_has_every_target_and_every_mips_linux_target_with_rust_196():
    table = target_table()
    assert {t.triple for t in table} == EXPECTED_TARGETS
    assert table.default_toolchain == "1.96"
    for triple in EXPECTED_TARGETS:
        assert "1.96" in table.get(triple).toolchains, triple
    # Debian's 1.63 stays for the targets it has a std for.
    assert "1.63" in table.get("mipsel-unknown-linux-gnu").toolchains
    assert "1.63" not in table.get("mips-unknown-linux-musl").toolchains
    with pytest.raises(TargetError, match="unknown target 'sparc-unknown-linux-gnu'"):
        table.get("sparc-unknown-linux-gnu")


def test_cargo_variables_are_named_in_one_place():
    assert cargo_target_variable("mips-unknown-linux-musl", "LINKER") == \
        "CARGO_TARGET_MIPS_UNKNOWN_LINUX_MUSL_LINKER"
    assert cargo_target_variable("thumbv7em-none-eabihf", "RUNNER") == \
        "CARGO_TARGET_THUMBV7EM_NONE_EABIHF_RUNNER"


@pytest.mark.parametrize("target", list(target_table()), ids=lambda t: t.triple)
def test_target_dockerfile_sets_the_targets_variables(target):
    catalog = load_catalog()
    recipe = catalog.get(target.triple)
    assert recipe.parent == "rust@1.96" and recipe.toolchain == "1.96"
    dockerfile = recipe.dockerfile
    assert "@" not in dockerfile.replace("rust@", ""), "a placeholder was left unrendered"
    upper = target.triple.upper().replace("-", "_")
    lower = target.triple.replace("-", "_")
    assert f"CARGO_TARGET_{upper}_LINKER={target.linker}" in dockerfile
    assert f"RUSTFARM_TARGET={target.triple}" in dockerfile
    std = target.std_for("1.96")
    assert ("--build-std" in dockerfile) == (std == "source")
    if target.qemu:
        assert f"CARGO_TARGET_{upper}_RUNNER={target.qemu}" in dockerfile
    else:
        assert "_RUNNER=" not in dockerfile
    if target.libc == "musl":
        assert f"--zig {shlex.quote(target.zig)}" in dockerfile
        assert f"CC_{lower}={target.triple}-cc" in dockerfile
        assert "link-self-contained=no" in dockerfile
    if target.libc == "gnu" and target.qemu:
        # std built here links against the cross C library, where qemu finds its loader.
        assert f"QEMU_LD_PREFIX=/usr/{target.cross}" in dockerfile
    if target.cc:
        assert f"CXX_{lower}=" in dockerfile and f"CMAKE_TOOLCHAIN_FILE_{lower}=" in dockerfile
    # The template is shared: apart from the table's values (one variable a line), all
    # are the same.
    variables = len(target.image_environment("1.96")) - 1
    assert len(dockerfile.splitlines()) - variables < 36


def test_debian_std_of_rust_163_comes_from_the_targets_architecture():
    catalog = load_catalog()
    dockerfile = catalog.get("mipsel-unknown-linux-gnu@1.63").dockerfile
    assert "libstd-rust-dev:mipsel" in dockerfile and "--build-std" not in dockerfile
    # That package brings mipsel's own libc, where qemu looks by default.
    assert "QEMU_LD_PREFIX" not in dockerfile
    assert catalog.get("mipsel-unknown-linux-gnu@1.63").parent == "rust@1.63"
    with pytest.raises(RecipeError, match="toolchain 1.63 cannot build mips-unknown-linux-musl"):
        catalog.get("mips-unknown-linux-musl@1.63")


def test_linux_targets_have_qemu_runners_and_others_say_why_not():
    for target in target_table():
        if "linux" in target.triple:
            assert target.runs_here, target.triple
            assert target.is_native == target.triple.startswith("x86_64-"), target.triple
        if target.binary.format != "elf":
            assert not target.runs_here
        if target.binary.machine == "EM_MIPS":
            assert target.binary.abi == ("o32" if target.binary.bits == 32 else "n64")


def test_a_broken_table_is_a_clear_error(tmp_path):
    table = tmp_path / "targets.yaml"
    table.write_text(TABLE_FILE.read_text().replace("libc: musl", "libc: uclibc", 1))
    with pytest.raises(TargetError, match="mips-unknown-linux-musl.*libc must be one of"):
        load_table(table)
    table.write_text(TABLE_FILE.read_text().replace('std: {"1.96": source}',
                                                    'std: {"1.70": source}', 1))
    with pytest.raises(TargetError, match="toolchain '1.70', which is not under toolchains"):
        load_table(table)


def test_copied_sources_reads_copy_lines_but_not_stage_copies():
    dockerfile = ("FROM x AS a\nCOPY --chown=u:g a.sh \\\n    b.sh /dst/\n"
                  "COPY --from=a /opt /opt\nADD [\"c.txt\", \"/c\"]\nRUN echo COPY no\n")
    assert copied_sources(dockerfile) == ["a.sh", "b.sh", "c.txt"]


def test_each_recipe_hashes_exactly_what_it_copies():
    catalog = load_catalog()
    worker = catalog.get("worker")
    assert [path for path, _ in worker.files] == [
        "scripts/add-rustbuild-user.sh", "scripts/apt-install.sh", "scripts/drop-setuid.sh",
        "worker/buildbot.tac", "worker/entrypoint.sh", "worker/requirements.txt"]
    assert {pin.name for pin in worker.wheels} >= {"buildbot-worker", "twisted"}
    assert any(key.startswith("wheel buildbot-worker==4.3.0") for key, _ in worker.inputs())
    assert catalog.get("base").files[0][0] == "base/make-rootfs.sh"
    rust = catalog.get("rust")
    assert rust.key == "rust@1.96"
    assert [pin.name for pin in rust.wheels] == ["ziglang"]
    assert "rustc-web cargo-web rust-web-src" in rust.dockerfile


def test_content_tags_are_stable_name_the_toolchain_and_change_with_any_input(tmp_path):
    root = copy_recipes(tmp_path)
    before = load_catalog(root)
    assert {r.key: before.content_tag(r.key) for r in before} == \
        {r.key: before.content_tag(r.key) for r in load_catalog(root)}
    assert all(tags.is_content_tag(before.content_tag(r.key)) for r in before)
    assert before.content_tag("mips-unknown-linux-musl").startswith("1.96-")
    assert before.content_tag("x86_64-unknown-linux-gnu@1.63").startswith("1.63-")
    assert re.fullmatch(r"[0-9a-f]{12}", before.content_tag("worker"))

    # A shared script used by the worker changes every image below it.
    with (root / "scripts/add-rustbuild-user.sh").open("a") as script:
        script.write("# changed\n")
    after = load_catalog(root)
    after_tags = {r.key: after.content_tag(r.key) for r in after}
    assert after.content_tag("base") == before.content_tag("base")
    for name in ["worker", "rust", "rust@1.63", "mipsel-unknown-linux-gnu"]:
        assert after.content_tag(name) != before.content_tag(name)

    # A change to the std build changes the 1.96 images, not 1.63's toolchain.
    with (root / "scripts/build-std.sh").open("a") as script:
        script.write("# changed\n")
    again = load_catalog(root)
    again_tags = {r.key: again.content_tag(r.key) for r in again}
    assert again_tags["rust@1.63"] == after_tags["rust@1.63"]
    assert again_tags["mips-unknown-linux-musl@1.96"] != after_tags["mips-unknown-linux-musl@1.96"]

    # The executable bit is part of what is copied.
    os.chmod(root / "scripts/install-target.sh", 0o644)
    assert load_catalog(root).content_tag("aarch64-unknown-linux-gnu") != \
        again_tags["aarch64-unknown-linux-gnu@1.96"]


def test_one_row_of_the_table_changes_one_image_per_toolchain(tmp_path):
    table = tmp_path / "targets.yaml"
    table.write_text(TABLE_FILE.read_text().replace(
        "gcc-s390x-linux-gnu", "gcc-s390x-linux-gnu make"))
    before = load_catalog()
    after = load_catalog(table=load_table(table))
    changed = [r.key for r in after if after.content_tag(r.key) != before.content_tag(r.key)]
    assert changed == ["s390x-unknown-linux-gnu@1.96", "s390x-unknown-linux-gnu@1.63"]


def test_a_dockerfile_copying_a_missing_file_is_named(tmp_path):
    root = copy_recipes(tmp_path)
    dockerfile = root / "rust/1.63.Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY rust/missing.toml /tmp/\n")
    with pytest.raises(RecipeError, match=r"rustfarm/rust: .*rust/missing.toml"):
        load_catalog(root)


def test_current_reference_names_the_target_image_its_toolchain_and_content_tag():
    reference = current_reference("mipsel-unknown-linux-gnu")
    repository, tag = tags.split_reference(reference)
    assert repository == "rustfarm/mipsel-unknown-linux-gnu"
    assert tags.is_content_tag(tag) and tags.tag_toolchain(tag) == "1.96"
    assert current_reference("mipsel-unknown-linux-gnu@1.63").split(":")[1].startswith("1.63-")


def test_split_reference_handles_registries_and_digests():
    assert tags.split_reference("127.0.0.1:5000/rustfarm/x:abc") == ("127.0.0.1:5000/rustfarm/x", "abc")
    assert tags.split_reference("127.0.0.1:5000/rustfarm/x") == ("127.0.0.1:5000/rustfarm/x", None)
    assert tags.split_reference("rustfarm/x@sha256:00") == ("rustfarm/x", "sha256:00")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", tags.date_tag())
    assert re.fullmatch(r"1\.96-\d{4}-\d{2}-\d{2}", tags.date_tag(toolchain="1.96"))
    assert tags.tag_toolchain("1.96-2026-11-22") == "1.96"
    assert tags.tag_toolchain("2026-11-22") is None


def test_worker_wheels_are_pinned_with_hashes():
    pins = read_pins(IMAGES_DIR / "worker/requirements.txt")
    versions = {pin.name: pin.version for pin in pins}
    assert versions["buildbot-worker"] == "4.3.0"
    assert all(len(pin.sha256) == 64 for pin in pins)


def test_readme_shows_the_current_targets_table():
    readme = (IMAGES_DIR / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the table: farm targets --markdown"


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
    scripts = sorted(IMAGES_DIR.rglob("*.sh")) + sorted(IMAGES_DIR.glob("scripts/rustfarm-*"))
    assert len(scripts) >= 10
    checked = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_target_images_carry_audit_tools_built_by_the_default_toolchain(tmp_path):
    """Every target image's audit-tools stage starts from the default toolchain's image
    (1.63's cargo cannot read the tools' Cargo.lock), so that image is built first and
    is part of the tag; the tools' Cargo.lock is too, and changes the target images
    alone."""
    root = copy_recipes(tmp_path)
    before = load_catalog(root)
    old = before.get("x86_64-unknown-linux-gnu@1.63")
    assert f"FROM {before.reference('rust@1.96')} AS audit-tools" in old.dockerfile
    assert "COPY --from=audit-tools /opt/audit-tools/bin/ /usr/local/bin/" in old.dockerfile
    assert not any(path.startswith("tool-crates/") for path, _ in old.files)
    assert [r.key for r in before.closure(["x86_64-unknown-linux-gnu@1.63"])] == [
        "base", "worker", "rust@1.96", "rust@1.63", "x86_64-unknown-linux-gnu@1.63"]
    tags_before = {r.key: before.content_tag(r.key) for r in before}
    lock = root / "target/audit-tools/Cargo.lock"
    lock.write_text(lock.read_text() + "\n")
    after = load_catalog(root)
    changed = {r.key for r in after if after.content_tag(r.key) != tags_before[r.key]}
    assert changed == {r.key for r in after if r.target is not None}
