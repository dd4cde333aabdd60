"""Signed releases: minisign's format (checked against Debian's minisign both ways),
the farm's keys and their rotation, a target's SBOM, provenance and SHA256SUMS, and
`farm verify` refusing any changed byte or another key."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rustfarm.attestations import ReleaseFacts, Shipped, provenance_subjects, sbom_crates
from rustfarm.crate_store import CrateStore
from rustfarm.minisign import PublicKey, SecretKey, SignatureError, verify
from rustfarm.release_files import SIGNATURE_FILE, SUMS_FILE, ReleaseCheckFailed, \
    attest_target, verify_target
from rustfarm.release_keys import ReleaseKeys, keys_file_text
from rustfarm.state import StateDir
from tests.support.docker_engine import unavailable
from tests.support.farm import farm_command

TRIPLE = "mips-unknown-linux-musl"
LOCK = """version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["itoa", "serde_derive"]

[[package]]
name = "itoa"
version = "1.0.15"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c"

[[package]]
name = "serde_derive"
version = "1.0.219"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "5b0276cf7f2c73365f7157c8123c21cd9a50fbbd844757af28ca1f5925fc2a00"
"""


def minisign() -> str:
    found = shutil.which("minisign")
    if found is None:
        unavailable("Debian's minisign is not installed (tools/bootstrap --test installs it)")
    return found


def test_minisign_checks_what_the_farm_signs_and_the_farm_checks_what_minisign_signs(
        tmp_path):
    key = SecretKey.generate()
    (tmp_path / "key.pub").write_text(key.public.file_text())
    (tmp_path / "SUMS").write_bytes(b"abc  file\n")
    (tmp_path / "SUMS.minisig").write_text(key.sign(b"abc  file\n", "project:x target:y"))
    done = subprocess.run([minisign(), "-V", "-p", "key.pub", "-m", "SUMS"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Trusted comment: project:x target:y" in done.stdout
    (tmp_path / "SUMS").write_bytes(b"abd  file\n")
    assert subprocess.run([minisign(), "-V", "-p", "key.pub", "-m", "SUMS"], cwd=tmp_path,
                          capture_output=True).returncode != 0
    # The other way: minisign's own key and signature.
    subprocess.run([minisign(), "-G", "-W", "-p", "theirs.pub", "-s", "theirs.key"],
                   cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([minisign(), "-S", "-s", "theirs.key", "-m", "SUMS", "-t", "theirs"],
                   cwd=tmp_path, check=True, capture_output=True)
    theirs = PublicKey.parse((tmp_path / "theirs.pub").read_text())
    signed_by, comment = verify(b"abd  file\n", (tmp_path / "SUMS.minisig").read_text(),
                                [theirs])
    assert (signed_by, comment) == (theirs, "theirs")
    with pytest.raises(SignatureError, match="not one of the trusted keys"):
        verify(b"abd  file\n", (tmp_path / "SUMS.minisig").read_text(), [key.public])


def test_a_changed_trusted_comment_is_refused():
    key = SecretKey.generate()
    lines = key.sign(b"data", "target:mips").splitlines()
    lines[2] = "trusted comment: target:x86_64"
    with pytest.raises(SignatureError, match="trusted comment was changed"):
        verify(b"data", "\n".join(lines) + "\n", [key.public])


def facts(archive: bytes, binary: bytes) -> ReleaseFacts:
    return ReleaseFacts(
        project="app", target=TRIPLE, revision="a" * 40, repository="/srv/app",
        builder=f"app:{TRIPLE}", build_url="http://farm/#/builders/3/builds/1",
        farm_url="http://farm/", image=f"rustfarm/{TRIPLE}:1.96-abc",
        image_digest="sha256:" + "b" * 64, toolchain="1.96.0", profile="release",
        cargo_arguments=("--target", TRIPLE), environment={"CC_mips": "zig cc"},
        started=1_800_000_000, finished=1_800_000_042,
        archive=Shipped("app.tar.gz", hashlib.sha256(archive).hexdigest()),
        binaries=(Shipped("app", hashlib.sha256(binary).hexdigest()),))


@pytest.fixture
def release(tmp_path):
    """A target's directory as the package and dependencies steps leave it, signed."""
    paths = StateDir(tmp_path / "state")
    directory = tmp_path / "artifacts" / "app" / "r1" / TRIPLE
    directory.mkdir(parents=True)
    (directory / "app.tar.gz").write_bytes(b"archive bytes")
    (directory / "Cargo.lock").write_text(LOCK)
    store = CrateStore(tmp_path / "crates")
    entry = store.root / "registry" / "itoa-1.0.15-4a5f13b858c8d314ee3e"
    entry.mkdir(parents=True)
    (entry / "Cargo.toml").write_text('[package]\nname = "itoa"\nlicense = "MIT OR Apache-2.0"\n')
    keys = ReleaseKeys(paths)
    # cargo compiled app and itoa for the target; serde_derive only for the build machine.
    signed = attest_target(directory, facts(b"archive bytes", b"binary"), keys, store,
                           ["app@0.1.0", "itoa@1.0.15"])
    return directory, keys, signed


def read_from(directory: Path):
    return lambda name: (directory / name).read_bytes()


def test_a_signed_target_lists_its_files_and_verifies(release):
    directory, keys, signed = release
    sums = (directory / SUMS_FILE).read_text().splitlines()
    assert [line.split("  ")[1] for line in sums] == [
        "app.tar.gz", "Cargo.lock", "sbom.cdx.json", "provenance.intoto.json"]
    verified = verify_target(read_from(directory), str(directory), TRIPLE, keys.trusted())
    assert verified.key_id == keys.current().id_text == signed.key_id
    assert verified.comment.endswith(f"revision:r1 target:{TRIPLE}") is False
    assert f"revision:{'a' * 40} target:{TRIPLE}" in verified.comment
    # The SBOM: what was linked for the target, with license, source and checksum.
    document = json.loads((directory / "sbom.cdx.json").read_text())
    assert sbom_crates((directory / "sbom.cdx.json").read_text()) == [("itoa", "1.0.15")]
    [itoa] = document["components"]
    assert itoa["purl"] == "pkg:cargo/itoa@1.0.15"
    assert itoa["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert itoa["hashes"][0]["content"].startswith("4a5f13b858")
    assert document["metadata"]["component"]["components"][0]["name"] == "app"
    # The provenance: the archive and binary, the commit, the lock, the image, the times.
    statement = json.loads((directory / "provenance.intoto.json").read_text())
    assert provenance_subjects(json.dumps(statement)) == {
        "app.tar.gz": hashlib.sha256(b"archive bytes").hexdigest(),
        "app": hashlib.sha256(b"binary").hexdigest()}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source"] == {"repository": "/srv/app",
                                                          "revision": "a" * 40}
    dependencies = {d.get("name", d.get("uri")): d for d in definition["resolvedDependencies"]}
    assert dependencies["Cargo.lock"]["digest"]["sha256"] == \
        hashlib.sha256(LOCK.encode()).hexdigest()
    assert dependencies["worker image"]["digest"]["sha256"] == "b" * 64
    assert dependencies[f"git+file:///srv/app@{'a' * 40}"]["digest"]["gitCommit"] == "a" * 40
    metadata = statement["predicate"]["runDetails"]["metadata"]
    assert (metadata["startedOn"], metadata["finishedOn"]) == ("2027-01-15T08:00:00Z",
                                                               "2027-01-15T08:00:42Z")


@pytest.mark.parametrize("changed", ["app.tar.gz", SUMS_FILE, "provenance.intoto.json",
                                     "sbom.cdx.json", "Cargo.lock"])
def test_one_changed_byte_is_refused_naming_the_file(release, changed):
    directory, keys, _ = release
    data = bytearray((directory / changed).read_bytes())
    data[len(data) // 2] ^= 1
    (directory / changed).write_bytes(bytes(data))
    with pytest.raises(ReleaseCheckFailed) as refused:
        verify_target(read_from(directory), str(directory), TRIPLE, keys.trusted())
    assert f"{directory}/{changed}:" in str(refused.value)


def test_a_release_signed_by_another_key_is_refused(release, tmp_path):
    directory, keys, _ = release
    sums = (directory / SUMS_FILE).read_bytes()
    other = SecretKey.generate()
    (directory / SIGNATURE_FILE).write_text(other.sign(sums, f"target:{TRIPLE}"))
    with pytest.raises(ReleaseCheckFailed, match="which is not one of the trusted keys"):
        verify_target(read_from(directory), str(directory), TRIPLE, keys.trusted())


def test_a_rotated_key_signs_new_releases_and_old_ones_still_verify(release, tmp_path):
    directory, keys, signed = release
    new, old = keys.rotate()
    assert old.id_text == signed.key_id and new.id_text != old.id_text
    assert keys.current() == new
    assert verify_target(read_from(directory), "old", TRIPLE, keys.trusted()).key_id == \
        old.id_text
    # Only the new key, and the old release is not trusted.
    with pytest.raises(ReleaseCheckFailed, match="not one of the trusted keys"):
        verify_target(read_from(directory), "old", TRIPLE, [new])


def test_farm_key_prints_and_rotates_and_farm_verify_checks_a_directory(release, tmp_path):
    directory, keys, _ = release
    config = tmp_path / "farm.yaml"
    config.write_text(FARM_YAML)
    first = farm_command(config, "key").stdout
    assert PublicKey.parse(first).id_text in first
    farm_command(config, "key", "--rotate")
    both = farm_command(config, "key", "--all").stdout
    assert first.strip() in both and both.strip() != first.strip()
    (tmp_path / "keys.pub").write_text(keys_file_text(keys.trusted()))
    done = farm_command(config, "verify", str(directory.parent), "--key",
                        str(tmp_path / "keys.pub"))
    assert f"verified {TRIPLE}: 4 files" in done.stdout
    # The farm's own keys (not those that signed this release): refused.
    done = farm_command(config, "verify", str(directory), check=False)
    assert done.returncode == 1 and "not one of the trusted keys" in done.stderr
    (directory / "app.tar.gz").write_bytes(b"archive bytez")
    done = farm_command(config, "verify", str(directory), "--key", str(tmp_path / "keys.pub"),
                        check=False)
    assert done.returncode == 1
    assert f"NOT VERIFIED {TRIPLE}: {directory}/app.tar.gz: its SHA-256 is not the one" \
        in done.stderr
    assert "Traceback" not in done.stderr


FARM_YAML = """\
farm: {name: keys}
targets:
  x86_64-unknown-linux-gnu: {pool: local}
workers:
  local: {kind: local, count: 1}
projects:
  hello: {source: /tmp, targets: [x86_64-unknown-linux-gnu]}
"""
