"""Cargo.lock read as data, and the configuration that takes its packages from the
farm's crate store."""

from __future__ import annotations

import tomllib

import pytest

from rustfarm.cargo_lock import (CRATES_IO, STORE_SOURCE, LockError, LockedPackage, read_lock,
                                 store_config, toml_text)

LOCK = f"""\
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["itoa", "private", "forked"]

[[package]]
name = "itoa"
version = "1.0.15"
source = "{CRATES_IO}"
checksum = "4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c"

[[package]]
name = "private"
version = "0.3.0"
source = "sparse+https://crates.example.com/index/"
checksum = "1111111111111111111111111111111111111111111111111111111111111111"

[[package]]
name = "forked"
version = "2.0.0"
source = "git+https://git.example.com/team/forked?branch=mips#0123456789abcdef0123456789abcdef01234567"
"""


def test_a_lock_names_each_package_s_source_and_pin():
    packages = {p.name: p for p in read_lock(LOCK)}
    assert packages["app"].kind == "path"
    assert packages["itoa"].store_key == "registry/itoa-1.0.15-4a5f13b858c8d314ee3e"
    assert packages["private"].kind == "registry"
    assert packages["forked"].kind == "git"
    assert packages["forked"].store_key == "git/forked-2.0.0-0123456789abcdef0123"


def test_the_first_lock_format_keeps_its_checksums_apart():
    lock = f"""\
[[package]]
name = "itoa"
version = "1.0.15"
source = "{CRATES_IO}"

[metadata]
"checksum itoa 1.0.15 ({CRATES_IO})" = "4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c"
"""
    [itoa] = read_lock(lock)
    assert itoa.checksum.startswith("4a5f13b8")


@pytest.mark.parametrize("text, message", [
    ("[[package]\n", "Cargo.lock: not a Cargo.lock"),
    ('[[package]]\nname = "x"\n', "package 1 has no name or version"),
    (f'[[package]]\nname = "x"\nversion = "1.0.0"\nsource = "{CRATES_IO}"\n',
     "x 1.0.0 from registry+https://github.com/rust-lang/crates.io-index has no checksum"),
    ('[[package]]\nname = "x"\nversion = "1.0.0"\nsource = "git+https://a/b"\n',
     "names no commit"),
])
def test_a_lock_the_farm_cannot_read_says_why(text, message):
    with pytest.raises(LockError, match=message.replace("+", r"\+").replace(".", r"\.")):
        read_lock(text)


def test_every_registry_and_repository_is_replaced_by_the_store():
    config = tomllib.loads(toml_text(store_config(read_lock(LOCK), "/view")))
    assert config["source"] == {
        STORE_SOURCE: {"directory": "/view"},
        "crates-io": {"replace-with": STORE_SOURCE},
        "sparse+https://crates.example.com/index/": {
            "registry": "sparse+https://crates.example.com/index/",
            "replace-with": STORE_SOURCE},
        # As cargo vendor writes it: the source without its commit, the URL and the ref.
        "git+https://git.example.com/team/forked?branch=mips": {
            "git": "https://git.example.com/team/forked", "branch": "mips",
            "replace-with": STORE_SOURCE}}


def test_a_project_without_dependencies_needs_only_the_store_source():
    config = store_config([LockedPackage("app", "0.1.0")], "/view")
    assert config == {"source": {STORE_SOURCE: {"directory": "/view"}}}
