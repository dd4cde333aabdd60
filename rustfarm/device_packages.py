"""A target's binaries as packages devices install: a Debian .deb (made by dpkg-deb)
and an OpenWrt .ipk (opkg's gzip'd tar of debian-binary, control.tar.gz and
data.tar.gz, as OpenWrt 24.10 installs), each with the target's architecture name
from rustfarm/targets.yaml. Binaries go to /usr/bin; a project that names a
service gets a procd init script in its .ipk. The same binaries, version and
SOURCE_DATE_EPOCH give the same bytes.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import FarmError
from .plumbing import partial_path
from .worker_tool.archives import Member, tar_gz_bytes

FILES = Path(__file__).with_name("package_files")
# Debian's package names (and OpenWrt's, which follow them).
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class PackagingError(FarmError):
    """A package that cannot be made, saying why."""


@dataclass(frozen=True)
class PackageInfo:
    name: str                 # the package's name (the project's, lower case)
    version: str              # upstream version + the revision, e.g. 0.3.1+a1b2c3d4e5f6
    description: str
    maintainer: str
    license: str
    epoch: int                # every file's time: the commit's (SOURCE_DATE_EPOCH)
    service: str = ""         # the command procd runs (OpenWrt), empty for none


def package_name(project: str) -> str:
    name = project.lower().replace("_", "-")
    if not PACKAGE_NAME.match(name):
        raise PackagingError(f"project name '{project}' cannot name a package: lower-case "
                             "letters, digits, '+', '-' and '.', two characters or more")
    return name


def package_version(crate_version: str | None, revision: str) -> str:
    """The crate's version with the revision after '+' (both Debian and opkg order it
    after the plain version); a crate without a version is 0."""
    base = crate_version if crate_version and re.match(r"^[0-9][A-Za-z0-9.~-]*$",
                                                       crate_version) else "0"
    label = re.sub(r"[^A-Za-z0-9.]", "", revision)[:12]
    return f"{base}+{label}" if label else base


def _control(info: PackageInfo, architecture: str, installed_kb: int, extra: dict) -> str:
    summary, _, rest = (info.description or info.name).strip().partition("\n")
    fields = {"Package": info.name, "Version": info.version, "Architecture": architecture,
              "Maintainer": info.maintainer, "Installed-Size": str(installed_kb), **extra,
              "Section": "utils", "Priority": "optional",
              "Description": summary.strip() + "".join(
                  f"\n {line.strip() or '.'}" for line in rest.splitlines())}
    return "".join(f"{key}: {value}\n" for key, value in fields.items() if value)


def _installed_kb(binaries: dict[str, bytes]) -> int:
    return max(1, sum((len(data) + 1023) // 1024 for data in binaries.values()))


def _template(name: str, values: dict[str, str]) -> bytes:
    text = (FILES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text.encode()


# xz at level 1: a tenth of the default level's time for a few MB of binary, a little
# larger (docs/benchmarks.md, "A real application"); every dpkg reads it.
DEB_COMPRESSION = ("-Zxz", "-z1")


def debian_package(info: PackageInfo, architecture: str, binaries: dict[str, bytes],
                   into: Path) -> Path:
    """``<name>_<version>_<arch>.deb`` in ``into``, made by dpkg-deb."""
    out = into / f"{info.name}_{info.version}_{architecture}.deb"
    with tempfile.TemporaryDirectory(prefix="rustfarm-deb-") as scratch:
        root = Path(scratch) / "root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr" / "bin").mkdir(parents=True)
        extra = {"License": info.license} if info.license else {}
        (root / "DEBIAN" / "control").write_text(
            _control(info, architecture, _installed_kb(binaries), extra))
        for name, data in binaries.items():
            path = root / "usr" / "bin" / name
            path.write_bytes(data)
            path.chmod(0o755)
        for path in [root, *root.rglob("*")]:
            # Whatever the master's umask: dpkg-deb wants these modes.
            path.chmod(0o755 if path.is_dir() or path.parent.name == "bin" else 0o644)
            os.utime(path, (info.epoch, info.epoch), follow_symlinks=False)
        partial = partial_path(out)
        done = subprocess.run(
            ["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION, "--build", str(root),
             str(partial)],
            capture_output=True, text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": str(info.epoch)})
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise PackagingError(f"dpkg-deb could not make {out.name}: "
                                 f"{done.stderr.strip()[-500:]}")
        partial.replace(out)
    return out


def openwrt_package(info: PackageInfo, architecture: str, binaries: dict[str, bytes],
                    into: Path) -> Path:
    """``<name>_<version>_<arch>.ipk`` in ``into``: opkg's layout, written here."""
    values = {"NAME": info.name, "COMMAND": info.service}
    data = [Member("./", directory=True), Member("./usr/", directory=True),
            Member("./usr/bin/", directory=True)]
    data += [Member(f"./usr/bin/{name}", data=content, executable=True)
             for name, content in binaries.items()]
    control = [Member("./", directory=True)]
    extra = {"License": info.license, "Source": "rustfarm", "SourceName": info.name}
    if info.service:
        data += [Member("./etc/", directory=True), Member("./etc/init.d/", directory=True),
                 Member(f"./etc/init.d/{info.name}", executable=True,
                        data=_template("openwrt-init.sh", values))]
        control += [Member("./postinst", executable=True,
                           data=_template("openwrt-postinst.sh", values)),
                    Member("./prerm", executable=True,
                           data=_template("openwrt-prerm.sh", values))]
    control.append(Member("./control", data=_control(
        info, architecture, _installed_kb(binaries), extra).encode()))
    outer = [Member("./debian-binary", data=b"2.0\n"),
             Member("./control.tar.gz", data=tar_gz_bytes(control, info.epoch)),
             Member("./data.tar.gz", data=tar_gz_bytes(data, info.epoch))]
    out = into / f"{info.name}_{info.version}_{architecture}.ipk"
    partial = partial_path(out)
    partial.write_bytes(tar_gz_bytes(outer, info.epoch))
    partial.replace(out)
    return out
