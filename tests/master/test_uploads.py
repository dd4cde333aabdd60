"""Uploaded projects are hostile until checked: each bad archive is refused with the
member and the reason, and nothing is written outside the upload's directory."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from rustfarm.master.uploads import Limits, UploadRefused, repack, unpack

LIMITS = Limits(max_files=50, max_unpacked=100_000)
MANIFEST = b'[package]\nname = "demo"\nversion = "0.1.0"\nedition = "2021"\n'


def archive(*members, compress: bool = True) -> bytes:
    """members: (name, bytes) for files, or a ready TarInfo and its bytes (or None)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if isinstance(member[0], tarfile.TarInfo):
                info, data = member
                tar.addfile(info, io.BytesIO(data) if data else None)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue()) if compress else buffer.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_a_project_unpacks_and_repacks(tmp_path):
    data = archive(("Cargo.toml", MANIFEST), ("src/main.rs", b"fn main() {}\n"),
                   ("target/debug/old", b"x"), compress=False)
    project = unpack(data, tmp_path / "up", LIMITS)
    assert (project.name, project.crate_dir, project.files) == ("demo", "", 3)
    repack(project, tmp_path / "source.tar.gz")
    with tarfile.open(tmp_path / "source.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["Cargo.toml", "src", "src/main.rs"]
        assert {m.mtime for m in tar} == {0}


def test_an_archive_of_a_directory_finds_its_crate(tmp_path):
    project = unpack(archive(("blinky/Cargo.toml", MANIFEST), ("blinky/src/main.rs", b"")),
                     tmp_path / "up", LIMITS)
    assert project.crate_dir == "blinky"


HOSTILE = [
    (archive(("../../outside", b"x")), "member '../../outside': '..' would leave the project"),
    (archive(("a/../../outside", b"x")), "'..' would leave the project"),
    (archive(special("escape", tarfile.SYMTYPE, "/etc/passwd")),
     "member 'escape': links to an absolute path (/etc/passwd)"),
    (archive(special("src/escape", tarfile.SYMTYPE, "../../../etc")),
     "member 'src/escape': links out of the project (../../../etc)"),
    (archive(special("hard", tarfile.LNKTYPE, "../secret")),
     "member 'hard': links out of the project"),
    (archive(special("disk", tarfile.BLKTYPE)), "member 'disk': devices, fifos"),
    (archive(special("pipe", tarfile.FIFOTYPE)), "member 'pipe': devices, fifos"),
    (archive(*[(f"f{i}", b"") for i in range(51)]), "more than 50 members"),
    (archive(("big", b"0" * 100_001)), "more than 100000 bytes once unpacked (at member 'big'"),
    (b"not an archive at all", "not a tar or tar.gz archive"),
    (archive(("src/main.rs", b"")), "no Cargo.toml at the top"),
    (archive(("Cargo.toml", b"[workspace]\nmembers = []\n")), "has no [package] name"),
]


@pytest.mark.parametrize("data, reason", HOSTILE)
def test_hostile_uploads_are_refused_saying_which_member_and_why(tmp_path, data, reason):
    with pytest.raises(UploadRefused) as refused:
        unpack(data, tmp_path / "box" / "up", LIMITS)
    assert reason in str(refused.value)
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "box")]
    assert outside == []


def test_an_absolute_member_is_refused_before_anything_is_unpacked(tmp_path):
    """tar's data filter would strip the slash; an upload that names /etc is refused."""
    with pytest.raises(UploadRefused) as refused:
        unpack(archive(("Cargo.toml", MANIFEST), ("/etc/cron.d/evil", b"x")),
               tmp_path / "box" / "up", LIMITS)
    assert "member '/etc/cron.d/evil': absolute paths are not allowed" in str(refused.value)
    assert not (tmp_path / "box" / "up" / "etc").exists()
    assert [p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "box")] == []


def test_links_inside_the_project_stay_and_writes_never_follow_them(tmp_path):
    data = archive(("Cargo.toml", MANIFEST), ("src/main.rs", b""),
                   special("alias", tarfile.SYMTYPE, "src"))
    project = unpack(data, tmp_path / "box" / "up", LIMITS)
    assert (project.root / "alias").is_dir()
    # A link, then a file "through" it: refused, nothing written where it would lead.
    data = archive(("Cargo.toml", MANIFEST), special("alias", tarfile.SYMTYPE, "."),
                   ("alias/extra.rs", b"x"))
    with pytest.raises(UploadRefused, match="member 'alias': a link where the upload also"):
        unpack(data, tmp_path / "box" / "up2", LIMITS)
    assert [p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "box")] == []
