"""Fetching a project's dependencies into the farm's crate store from real crates.io and
a git repository, without running anything of the project's; an altered entry is
found and fetched again."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import pytest

from rustfarm.crate_store import CrateStore, entry_problem
from rustfarm.worker_tool.crate_copies import DAY, PRUNE_EVERY, PRUNED_STAMP
from rustfarm.dependencies import CargoSettings, DependencyError, fetch_dependencies
from rustfarm.master.dependency_steps import Dependencies
from tests.support.crates_io import require_crates_io
from tests.support.git_repos import PushedRepository

# A small command-line tool's dependencies (itoa and memchr: no build scripts, few files).
MANIFEST = """\
[package]
name = "tool"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "=1.0.15"
memchr = "=2.7.4"
"""


def snapshot_of(directory: Path, into: Path) -> Path:
    """The project's files as the master keeps them: a .tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    into.write_bytes(buffer.getvalue())
    return into


def write_project(root: Path, manifest: str = MANIFEST, lock: str | None = None) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.rs").write_text("fn main() {}\n")
    (root / "Cargo.toml").write_text(manifest)
    if lock:
        (root / "Cargo.lock").write_text(lock)
    return root


@pytest.fixture
def farm_cargo(tmp_path) -> tuple[CrateStore, CargoSettings]:
    require_crates_io()
    return (CrateStore(tmp_path / "store"),
            CargoSettings(cargo_home=tmp_path / "cargo-home"))


@pytest.fixture(scope="module")
def resolved_lock(tmp_path_factory) -> str:
    """MANIFEST's Cargo.lock, as the farm resolves it for a project without one."""
    require_crates_io()
    root = tmp_path_factory.mktemp("resolve")
    fetched = fetch_dependencies(snapshot_of(write_project(root / "p"), root / "s.tar.gz"),
                                 "", CrateStore(root / "store"),
                                 CargoSettings(cargo_home=root / "home"))
    return fetched.resolved_lock


def test_a_project_without_a_lock_gets_one_resolved_and_kept(resolved_lock):
    assert 'name = "itoa"\nversion = "1.0.15"' in resolved_lock
    assert "checksum = " in resolved_lock


def test_crates_are_fetched_once_for_the_farm_and_checked(farm_cargo, tmp_path, resolved_lock):
    store, cargo = farm_cargo
    snapshot = snapshot_of(write_project(tmp_path / "one", lock=resolved_lock),
                           tmp_path / "one.tar.gz")
    first = fetch_dependencies(snapshot, "", store, cargo)
    assert sorted(str(p) for p in first.downloaded) == ["itoa 1.0.15", "memchr 2.7.4"]
    assert first.resolved_lock is None and first.lock_path == "Cargo.lock"
    for package in first.packages:
        assert entry_problem(store.entry(package), package) is None
    # Another project with the same lock downloads nothing.
    other = snapshot_of(write_project(tmp_path / "two", lock=resolved_lock.replace(
        '"tool"', '"other"'), manifest=MANIFEST.replace('"tool"', '"other"')),
        tmp_path / "two.tar.gz")
    second = fetch_dependencies(other, "", store, cargo)
    assert second.downloaded == [] and len(second.packages) == 2

    # An entry altered on disk is found, removed and fetched again: never used.
    [itoa] = [p for p in second.packages if p.name == "itoa"]
    (store.entry(itoa) / "src" / "lib.rs").write_text("pub fn fmt() { /* altered */ }\n")
    third = fetch_dependencies(other, "", store, cargo)
    assert [str(p) for p in third.downloaded] == ["itoa 1.0.15"]
    assert third.altered == ["itoa 1.0.15: src/lib.rs was changed"]
    assert "altered" not in (store.entry(itoa) / "src" / "lib.rs").read_text()
    # So is an entry of another .crate than the lock's checksum.
    listing = store.entry(itoa) / ".cargo-checksum.json"
    listing.write_text(json.dumps({**json.loads(listing.read_text()), "package": "0" * 64}))
    assert entry_problem(store.entry(itoa), itoa) is not None
    assert [str(p) for p in fetch_dependencies(other, "", store, cargo).downloaded] == \
        ["itoa 1.0.15"]


def test_a_lock_of_another_checksum_is_never_fetched(farm_cargo, tmp_path, resolved_lock):
    store, cargo = farm_cargo
    forged = resolved_lock.replace(
        next(line for line in resolved_lock.splitlines() if line.startswith("checksum")),
        'checksum = "' + "0" * 64 + '"', 1)
    snapshot = snapshot_of(write_project(tmp_path / "p", lock=forged), tmp_path / "p.tar.gz")
    with pytest.raises(DependencyError, match="checksum"):
        fetch_dependencies(snapshot, "", store, cargo)
    assert not list(store.root.glob("registry/*"))


# A project's cargo configuration that runs a program wherever cargo reads it: as
# rustc's wrapper and as rustc, and a toolchain file that names a toolchain this
# machine does not have.
HOSTILE_CONFIG = """\
[build]
rustc-wrapper = "{marker}-wrapper"
rustc = "{marker}-rustc"

[target.x86_64-unknown-linux-gnu]
runner = "{marker}-runner"
"""


def test_the_project_s_cargo_configuration_runs_nothing_here(farm_cargo, tmp_path):
    store, cargo = farm_cargo
    marker = tmp_path / "ran"
    for role in ("wrapper", "rustc", "runner"):
        program = Path(f"{marker}-{role}")
        program.write_text(f"#!/bin/sh\ntouch {marker}\nexec \"$@\"\n")
        program.chmod(0o755)
    project = write_project(tmp_path / "p")
    (project / ".cargo").mkdir()
    (project / ".cargo" / "config.toml").write_text(HOSTILE_CONFIG.format(marker=marker))
    (project / "rust-toolchain.toml").write_text('[toolchain]\nchannel = "nightly-2020-01-01"\n')
    fetched = fetch_dependencies(snapshot_of(project, tmp_path / "p.tar.gz"), "", store, cargo)
    assert len(fetched.packages) == 2 and fetched.resolved_lock
    assert not marker.exists(), "a program of the project's configuration ran"


def test_a_git_dependency_pinned_by_the_lock_is_fetched(farm_cargo, tmp_path):
    store, cargo = farm_cargo
    library = tmp_path / "lib-src"
    (library / "src").mkdir(parents=True)
    (library / "Cargo.toml").write_text('[package]\nname = "forked"\nversion = "2.0.0"\n'
                                        'edition = "2021"\n')
    (library / "src" / "lib.rs").write_text("pub fn answer() -> u32 { 42 }\n")
    repo = PushedRepository(tmp_path / "git", "forked", library)
    project = write_project(tmp_path / "p", manifest=(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nforked = {{ git = "{repo.url}", branch = "main" }}\n'))
    fetched = fetch_dependencies(snapshot_of(project, tmp_path / "p.tar.gz"), "", store, cargo)
    [forked] = fetched.packages
    assert forked.kind == "git" and forked.commit == repo.head()
    assert (store.entry(forked) / "src" / "lib.rs").read_text() == \
        "pub fn answer() -> u32 { 42 }\n"
    # Resolved again (the project has no lock), to the same commit: nothing to fetch.
    again = fetch_dependencies(snapshot_of(project, tmp_path / "q.tar.gz"), "", store, cargo)
    assert again.downloaded == [] and again.packages == [forked]


def test_a_crate_the_registry_does_not_have_is_a_clear_error(farm_cargo, tmp_path):
    store, cargo = farm_cargo
    project = write_project(tmp_path / "p", manifest=MANIFEST.replace(
        'memchr = "=2.7.4"', 'no-such-crate-rustfarm-test = "1"'))
    with pytest.raises(DependencyError, match="no-such-crate-rustfarm-test"):
        fetch_dependencies(snapshot_of(project, tmp_path / "p.tar.gz"), "", store, cargo)


def test_an_upload_takes_crates_from_crates_io_alone(tmp_path):
    """Anyone may upload: the farm fetches nothing for it from a git repository, another
    registry or a path outside the upload, and says which dependency asked."""
    project = write_project(tmp_path / "p", manifest=MANIFEST + (
        'forked = { git = "https://git.example.com/forked" }\n'
        'private = { version = "1", registry = "company" }\n'
        'secrets = { path = "../../etc" }\n'
        'inside = { path = "crates/inside" }\n\n'
        '[patch.crates-io]\nitoa = { path = "/home/someone/itoa" }\n'))
    with pytest.raises(DependencyError) as refused:
        fetch_dependencies(snapshot_of(project, tmp_path / "p.tar.gz"), "",
                           CrateStore(tmp_path / "store"),
                           CargoSettings(cargo_home=tmp_path / "home"), upload=True)
    message = str(refused.value)
    assert "Cargo.toml: [dependencies] forked: git dependencies are not fetched" in message
    assert "[dependencies] private: uploads take crates from crates.io only" in message
    assert "[dependencies] secrets: path ../../etc is outside the upload" in message
    assert "[patch.crates-io] itoa: path /home/someone/itoa is outside" in message
    assert "inside" not in message
    assert not (tmp_path / "home").exists(), "cargo ran for a refused upload"


@pytest.fixture
def company_registry(tmp_path):
    """A private registry that needs a token, with the crate secret-lib published."""
    from tests.support.cargo_registry import PrivateRegistry
    registry = PrivateRegistry(tmp_path / "registry", token="company-s3cret-token").start()
    library = tmp_path / "secret-lib"
    (library / "src").mkdir(parents=True)
    (library / "Cargo.toml").write_text(
        '[package]\nname = "secret-lib"\nversion = "0.1.0"\nedition = "2021"\n'
        'description = "a company crate"\nlicense = "MIT"\n')
    (library / "src" / "lib.rs").write_text("pub fn secret() -> u32 { 7 }\n")
    registry.publish(library)
    yield registry
    registry.stop()


def test_a_private_registry_s_crates_come_with_its_token(company_registry, tmp_path):
    from rustfarm.farmfile.crate_source import CargoRegistry
    registry = CargoRegistry("company", company_registry.index, token=True)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    project = write_project(tmp_path / "p", manifest=(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[dependencies]\nsecret-lib = { version = "0.1", registry = "company" }\n'))
    snapshot = snapshot_of(project, tmp_path / "p.tar.gz")
    store = CrateStore(tmp_path / "store")
    settings = CargoSettings(cargo_home=tmp_path / "home", registries=(registry,),
                             secrets=secrets)
    # Without its token the registry answers nothing, and the build is refused clearly.
    with pytest.raises(DependencyError, match="company"):
        fetch_dependencies(snapshot, "", store, settings)
    (secrets / registry.secret_name).write_text("company-s3cret-token\n")
    fetched = fetch_dependencies(snapshot, "", store, settings)
    [secret_lib] = fetched.packages
    assert secret_lib.source == company_registry.index
    assert (store.entry(secret_lib) / "src" / "lib.rs").read_text().startswith("pub fn secret")
    assert company_registry.requests_with_token() >= 2       # its index entry and its crate
    assert "company-s3cret-token" not in "\n".join(fetched.log)
    # Uploads may not take it unless farm.yaml allows them.
    with pytest.raises(DependencyError, match="uploads take crates from crates.io only"):
        fetch_dependencies(snapshot, "", store, settings, upload=True)


def test_what_no_build_used_for_keep_days_leaves_the_store_as_it_grows(tmp_path, resolved_lock):
    require_crates_io()
    store = CrateStore(tmp_path / "store", keep_days=30)
    cargo = CargoSettings(cargo_home=tmp_path / "home")
    one = snapshot_of(write_project(tmp_path / "one", lock=resolved_lock), tmp_path / "one.tgz")
    fetch_dependencies(one, "", store, cargo)
    [itoa] = (store.root / "registry").glob("itoa-*")
    [memchr] = (store.root / "registry").glob("memchr-*")
    long_ago, yesterday = time.time() - 40 * DAY, time.time() - DAY
    os.utime(itoa, (long_ago, long_ago))
    os.utime(memchr, (yesterday, yesterday))
    os.utime(store.root / PRUNED_STAMP, (yesterday, yesterday))   # last looked a day ago
    # Another project (memchr and ryu, not itoa) makes the store grow: itoa goes.
    two = snapshot_of(write_project(tmp_path / "two", manifest=MANIFEST.replace(
        '"tool"', '"two"').replace('itoa = "=1.0.15"', 'ryu = "=1.0.18"')), tmp_path / "two.tgz")
    grown = fetch_dependencies(two, "", store, cargo)
    assert [str(p) for p in grown.downloaded] == ["ryu 1.0.18"]
    assert grown.pruned.keys == [f"registry/{itoa.name}"] and grown.pruned.size > 1000
    assert not itoa.exists() and memchr.is_dir()
    said = Dependencies.report(grown, store.keep_days)
    assert "removed from the store, used by no build for 30 days: 1 package (" in said
    assert f"removed: registry/{itoa.name}" in said
    assert memchr.stat().st_mtime > time.time() - 600, "the check marks what a build uses"
    # The project that needs it again fetches it again.
    again = fetch_dependencies(one, "", store, cargo)
    assert [str(p) for p in again.downloaded] == ["itoa 1.0.15"] and itoa.is_dir()
    # Looked for at most once an hour; an hour on, all that 31 days left unused goes.
    assert store.prune(now=time.time() + 60).keys == []
    later = store.prune(now=time.time() + PRUNE_EVERY + 31 * DAY)
    assert sorted(k.split("-")[0] for k in later.keys) == ["registry/itoa", "registry/memchr",
                                                           "registry/ryu"]
    assert not any((store.root / "registry").iterdir())
    # keep_days 0: nothing goes.
    fetch_dependencies(one, "", store, cargo)
    kept = CrateStore(store.root, keep_days=0)
    assert kept.prune(now=time.time() + 1000 * DAY).keys == []
    assert len(list((store.root / "registry").iterdir())) == 2
