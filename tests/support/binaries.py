"""What a built artifact's header says, and checks that it says what a target expects.

ELF headers are read with pyelftools; PE and wasm headers are a few bytes read
here. ``check_artifact(path, **asdict(target.binary))`` takes the fields of a
row of rustfarm/targets.yaml.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

# ARM EABI float ABI bits of e_flags.
EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
# MIPS ABI bits of e_flags: o32 says so; n32 sets ABI2; n64 is ELF64 without ABI2.
EF_MIPS_ABI = 0xF000
EF_MIPS_ABI_O32 = 0x1000
EF_MIPS_ABI2 = 0x20

PE_MACHINES = {0x014C: "I386", 0x8664: "AMD64", 0xAA64: "ARM64", 0x01C4: "ARMNT"}
WASM_MAGIC = b"\0asm"


@dataclass(frozen=True)
class Header:
    format: str                 # elf, pe or wasm
    machine: str | None = None  # EM_MIPS ... or AMD64 ...
    bits: int | None = None
    endian: str | None = None
    float: str | None = None    # ARM only: hard or soft
    abi: str | None = None      # MIPS only: o32, n32 or n64
    kind: str | None = None     # ELF e_type (ET_EXEC, ET_DYN) or PE/wasm version

    def describe(self) -> str:
        fields = [self.format, self.machine, self.bits and f"{self.bits}-bit", self.endian,
                  self.float and f"{self.float}-float", self.abi, self.kind]
        return " ".join(str(f) for f in fields if f)


def read_header(path: Path) -> Header:
    path = Path(path)
    with path.open("rb") as stream:
        start = stream.read(64)
        if start.startswith(b"\x7fELF"):
            stream.seek(0)
            return _elf_header(ELFFile(stream))
    if start.startswith(b"MZ"):
        return _pe_header(path.read_bytes())
    if start.startswith(WASM_MAGIC):
        (version,) = struct.unpack_from("<I", start, 4)
        return Header("wasm", kind=f"version {version}")
    raise ValueError(f"{path}: neither ELF, PE nor wasm (starts with {start[:8]!r})")


def _elf_header(elf: ELFFile) -> Header:
    machine = elf.header["e_machine"]
    flags = elf.header["e_flags"]
    float_abi = abi = None
    if machine == "EM_ARM":
        if flags & EF_ARM_ABI_FLOAT_HARD:
            float_abi = "hard"
        elif flags & EF_ARM_ABI_FLOAT_SOFT:
            float_abi = "soft"
    if machine == "EM_MIPS":
        if flags & EF_MIPS_ABI2:
            abi = "n32"
        elif elf.elfclass == 64:
            abi = "n64"
        elif flags & EF_MIPS_ABI == EF_MIPS_ABI_O32:
            abi = "o32"
    return Header("elf", machine=machine, bits=elf.elfclass,
                  endian="little" if elf.little_endian else "big",
                  float=float_abi, abi=abi, kind=elf.header["e_type"])


def _pe_header(data: bytes) -> Header:
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    if data[offset:offset + 4] != b"PE\0\0":
        raise ValueError("MZ file without a PE signature")
    (machine,) = struct.unpack_from("<H", data, offset + 4)
    (optional_magic,) = struct.unpack_from("<H", data, offset + 24)
    bits = {0x10B: 32, 0x20B: 64}.get(optional_magic)
    return Header("pe", machine=PE_MACHINES.get(machine, hex(machine)), bits=bits,
                  endian="little")


def check_artifact(path: Path, format: str, machine: str | None = None,
                   bits: int | None = None, endian: str | None = None,
                   float: str | None = None, abi: str | None = None) -> Header:
    """Raise AssertionError unless the artifact's header matches every given field."""
    header = read_header(path)
    expected = {"format": format, "machine": machine, "bits": bits, "endian": endian,
                "float": float, "abi": abi}
    wrong = {key: (value, getattr(header, key)) for key, value in expected.items()
             if value is not None and getattr(header, key) != value}
    assert not wrong, (f"{Path(path).name}: header is {header.describe()}; mismatched "
                       + ", ".join(f"{k} expected {e!r} got {g!r}" for k, (e, g) in wrong.items()))
    return header


def run_downloaded(url: str, dest: Path, binary: str, target,
                   headers: dict | None = None) -> str:
    """Download a build's .tar.gz artifact, unpack it into ``dest``, check ``binary``'s
    header against the target's row and run it (under the target's qemu-user, or
    natively): its standard output. Raises AssertionError when any of that fails."""
    import io
    import subprocess
    import tarfile

    import requests

    reply = requests.get(url, timeout=60, headers=headers)
    reply.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
        tar.extractall(dest, filter="data")
    path = dest / binary
    check_artifact(path, **target.binary.__dict__)
    ran = subprocess.run(([target.qemu] if target.qemu else []) + [str(path)],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran
    return ran.stdout


def embedded_crates(image: str, binary: Path) -> dict | None:
    """The dependency list cargo-auditable embedded in ``binary``, as rust-audit-info in
    ``image`` (a target image) reads it back; None when it has none."""
    import json
    import subprocess

    ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0",
                          "-v", f"{binary.parent}:/artifact:ro", image, "rust-audit-info",
                          f"/artifact/{binary.name}"], capture_output=True, text=True,
                         timeout=120)
    return json.loads(ran.stdout) if ran.returncode == 0 else None
