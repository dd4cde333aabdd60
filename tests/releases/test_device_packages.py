"""The release's packages: a .deb that dpkg-deb reads back with Debian's architecture
name, an .ipk in opkg's layout with OpenWrt's, a procd init script for a service, the
same bytes from the same input, and both listed in the signed SHA256SUMS."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from rustfarm.device_packages import PackageInfo, PackagingError, debian_package, \
    openwrt_package, package_name, package_version
from rustfarm.release_files import SUMS_FILE, Packaging, attest_target, verify_target
from rustfarm.release_keys import ReleaseKeys
from rustfarm.state import StateDir
from rustfarm.targets import target_table
from rustfarm.worker_tool.archives import Member, tar_gz_bytes

from .test_signed_releases import TRIPLE, facts

BINARIES = {"hello": b"\x7fELF mips binary", "helper": b"\x7fELF another"}
INFO = PackageInfo(name="hello", version=package_version("0.3.1", "a1b2c3d4e5f6"),
                   description="Says hello\nfrom a router.", maintainer="Team <team@example.org>",
                   license="MIT", epoch=1_700_000_000, service="/usr/bin/hello --serve")


def test_two_writers_of_one_release_s_packages_at_once_both_succeed(tmp_path):
    """Two masters that built one revision write its packages into one directory at
    once: each writes a file of its own, then renames it, and both end with the package."""
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda make: make(INFO, "mipsel", BINARIES, tmp_path),
                             [debian_package, openwrt_package] * 4))
    assert {p.name for p in made} == {p.name for p in tmp_path.iterdir()} == {
        "hello_0.3.1+a1b2c3d4e5f6_mipsel.deb", "hello_0.3.1+a1b2c3d4e5f6_mipsel.ipk"}


def test_the_table_names_debian_and_openwrt_architectures():
    table = target_table().targets
    assert (table["mipsel-unknown-linux-musl"].debian,
            table["mipsel-unknown-linux-musl"].openwrt) == ("mipsel", "mipsel_24kc")
    assert table["mips-unknown-linux-musl"].openwrt == "mips_24kc"
    assert table["mips64-unknown-linux-muslabi64"].openwrt == "mips64_octeonplus"
    assert table["armv7-unknown-linux-musleabihf"].openwrt == "arm_cortex-a7_neon-vfpv4"
    assert table["aarch64-unknown-linux-gnu"].debian == "arm64"
    assert table["powerpc64le-unknown-linux-gnu"].debian == "ppc64el"
    # OpenWrt runs musl: no .ipk of a glibc build; no package of wasm.
    assert table["mips-unknown-linux-gnu"].openwrt is None
    assert table["wasm32-unknown-unknown"].debian is None


def test_a_deb_that_dpkg_deb_reads_with_debian_s_architecture(tmp_path):
    # The master's umask keeps its files to itself; the package's modes are its own.
    old = os.umask(0o077)
    try:
        deb = debian_package(INFO, "mipsel", BINARIES, tmp_path)
    finally:
        os.umask(old)
    assert deb.name == "hello_0.3.1+a1b2c3d4e5f6_mipsel.deb"
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    assert " Architecture: mipsel\n" in info
    assert " Version: 0.3.1+a1b2c3d4e5f6\n" in info
    assert " Maintainer: Team <team@example.org>\n" in info
    assert " Description: Says hello\n  from a router.\n" in info
    contents = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True,
                              text=True, check=True).stdout.splitlines()
    files = {line.split()[-1]: line.split()[0] for line in contents}
    assert files["./usr/bin/hello"] == "-rwxr-xr-x" and "./usr/bin/helper" in files
    assert all(" root/root " in line for line in contents)
    extracted = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)
    assert (extracted / "usr" / "bin" / "hello").read_bytes() == BINARIES["hello"]
    first = deb.read_bytes()
    deb.unlink()
    assert debian_package(INFO, "mipsel", BINARIES, tmp_path).read_bytes() == first


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(name).read()


def test_an_ipk_in_opkg_s_layout_with_openwrt_s_architecture_and_a_procd_service(tmp_path):
    ipk = openwrt_package(INFO, "mipsel_24kc", BINARIES, tmp_path)
    assert ipk.name == "hello_0.3.1+a1b2c3d4e5f6_mipsel_24kc.ipk"
    outer = ipk.read_bytes()
    assert set(members(outer)) == {"./debian-binary", "./control.tar.gz", "./data.tar.gz"}
    assert read(outer, "./debian-binary") == b"2.0\n"
    control = read(outer, "./control.tar.gz")
    fields = dict(line.split(": ", 1) for line in read(control, "./control").decode()
                  .splitlines() if ": " in line)
    assert fields["Architecture"] == "mipsel_24kc"
    assert (fields["Package"], fields["Version"]) == ("hello", "0.3.1+a1b2c3d4e5f6")
    assert set(members(control)) == {".", "./control", "./postinst", "./prerm"}
    data = read(outer, "./data.tar.gz")
    layout = members(data)
    assert {"./usr/bin/hello", "./usr/bin/helper", "./etc/init.d/hello"} <= set(layout)
    assert layout["./usr/bin/hello"].mode == 0o755
    assert layout["./usr/bin/hello"].mtime == INFO.epoch
    init = read(data, "./etc/init.d/hello").decode()
    assert init.startswith("#!/bin/sh /etc/rc.common\n") and "USE_PROCD=1" in init
    assert "procd_set_param command /usr/bin/hello --serve\n" in init
    assert "/etc/init.d/hello enable" in read(control, "./postinst").decode()
    # Without a service: binaries only.
    plain = openwrt_package(PackageInfo(**{**INFO.__dict__, "service": ""}), "mips_24kc",
                            BINARIES, tmp_path).read_bytes()
    assert "./etc/init.d/hello" not in members(read(plain, "./data.tar.gz"))
    assert set(members(read(plain, "./control.tar.gz"))) == {".", "./control"}
    assert openwrt_package(INFO, "mipsel_24kc", BINARIES, tmp_path).read_bytes() == outer


def test_names_and_versions_packages_accept():
    assert package_name("Hello_World") == "hello-world"
    with pytest.raises(PackagingError, match="cannot name a package"):
        package_name("x")
    assert package_version(None, "abc") == "0+abc"
    assert package_version("1.2.3-rc.1", "0123456789abcdef") == "1.2.3-rc.1+0123456789ab"


def test_the_packages_are_listed_in_the_signed_sums_and_the_provenance(tmp_path):
    directory = tmp_path / TRIPLE
    directory.mkdir()
    archive = tar_gz_bytes(Member(name, data=data, executable=True)
                           for name, data in BINARIES.items())
    (directory / "app.tar.gz").write_bytes(archive)
    keys = ReleaseKeys(StateDir(tmp_path / "state"))
    signed = attest_target(directory, facts(archive, BINARIES["hello"]), keys, None, [],
                           Packaging(INFO, (("deb", "mipsel"), ("ipk", "mipsel_24kc"))))
    names = [name for name, _ in signed.files]
    assert names == ["app.tar.gz", "hello_0.3.1+a1b2c3d4e5f6_mipsel.deb",
                     "hello_0.3.1+a1b2c3d4e5f6_mipsel_24kc.ipk", "sbom.cdx.json",
                     "provenance.intoto.json"]
    assert (directory / SUMS_FILE).read_text().count("\n") == 5
    verified = verify_target(lambda n: (directory / n).read_bytes(), "d", TRIPLE,
                             keys.trusted())
    assert verified.files == names
    assert "hello_0.3.1+a1b2c3d4e5f6_mipsel.deb" in (directory / "provenance.intoto.json") \
        .read_text()
