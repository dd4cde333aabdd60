"""Small crates written by tests: ones that fail in a known way, and copies of the
fixture crates under another name."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


def renamed_copy(fixture: str, directory: Path, name: str) -> Path:
    """The fixture crate ``fixture`` as the crate ``name`` in ``directory``: another
    project's crate with the same dependencies (and the same Cargo.lock)."""
    crate = directory / name
    shutil.copytree(FIXTURES / fixture, crate, ignore=shutil.ignore_patterns("target"))
    for file in ("Cargo.toml", "Cargo.lock"):
        path = crate / file
        path.write_text(path.read_text().replace(f'name = "{fixture}"', f'name = "{name}"'))
    return crate


def write_crate(directory: Path, name: str, main_rs: str) -> Path:
    (directory / "src").mkdir(parents=True, exist_ok=True)
    (directory / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n'
                                          'edition = "2021"\n')
    (directory / "src" / "main.rs").write_text(main_rs)
    return directory


def broken_crate(directory: Path) -> Path:
    """A crate whose build fails with error[E0308] at src/main.rs:2:18."""
    return write_crate(directory, "broken", 'fn main() {\n    let n: u32 = "four";\n}\n')


def failing_test_crate(directory: Path) -> Path:
    """A crate whose test ``tests::adds_up`` fails ("arithmetic is broken") and
    ``tests::fine`` passes."""
    return write_crate(directory, "failing", (
        'fn main() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds_up() {\n'
        '        assert_eq!(1 + 1, 3, "arithmetic is broken");\n    }\n\n'
        '    #[test]\n    fn fine() {}\n}\n'))


def _busy_library(prefix: str, count: int, below: str | None) -> str:
    """``count`` functions whose code generation takes a while in release, each
    calling the one of the same number in the library ``below``, if any."""
    lines = [f"pub use {below}::mix;" if below else
             "#[inline(never)]\npub fn mix(x: u64, k: u32) -> u64 {\n"
             "    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(k) ^ (x >> 7)\n}"]
    for i in range(count):
        call = f" ^ {below}::{below[0]}{i}(x)" if below else ""
        lines.append(
            f"pub fn {prefix}{i}(x: u64) -> u64 {{\n"
            f"    let mut h = mix(x ^ {i}, {i % 31 + 1}){call};\n"
            f"    for k in 0..(x as u32 % 5 + {i % 7}) {{\n"
            f"        h = mix(h, k) ^ h.count_ones() as u64;\n"
            f"        if h % {i + 3} == 1 {{\n            h = h.wrapping_add({i});\n        }}\n"
            "    }\n    h\n}")
    return "\n".join(lines) + "\n"


def chain_crate(directory: Path, name: str, functions: int = 800) -> Path:
    """A crate ``name`` over a chain of two path dependencies, ``middle`` on ``bottom``,
    each ``functions`` functions long: a library whose dependent can start compiling
    on its metadata (cargo's pipelining) long before its own code is generated. The
    binary prints ``chain: N``."""
    for library, below in (("bottom", None), ("middle", "bottom")):
        (directory / library / "src").mkdir(parents=True, exist_ok=True)
        dependency = f'\n[dependencies]\n{below} = {{ path = "../{below}" }}\n' if below else ""
        (directory / library / "Cargo.toml").write_text(
            f'[package]\nname = "{library}"\nversion = "0.1.0"\nedition = "2021"\n'
            + dependency)
        (directory / library / "src" / "lib.rs").write_text(
            _busy_library(library[0], functions, below))
    write_crate(directory, name, 'fn main() {\n'
                '    println!("chain: {}", middle::m7(std::env::args().count() as u64));\n}\n')
    manifest = directory / "Cargo.toml"
    manifest.write_text(manifest.read_text() + '\n[dependencies]\nmiddle = { path = "middle" }\n')
    return directory


def generated_crate(directory: Path, name: str, motd: str, banner: str) -> Path:
    """A crate ``name`` over a path dependency ``settings`` whose build script reads
    two files of its own: ``motd.txt`` reaches the library through an environment
    variable (``env!``), ``banner.txt`` through code written to ``OUT_DIR``
    (``include!``). The binary prints ``motd=MOTD banner=BANNER``."""
    settings = directory / "settings"
    (settings / "src").mkdir(parents=True, exist_ok=True)
    (settings / "Cargo.toml").write_text('[package]\nname = "settings"\nversion = "0.1.0"\n'
                                         'edition = "2021"\nbuild = "build.rs"\n')
    (settings / "build.rs").write_text(
        'use std::{env, fs, path::Path};\n\n'
        'fn main() {\n'
        '    println!("cargo:rerun-if-changed=motd.txt");\n'
        '    println!("cargo:rerun-if-changed=banner.txt");\n'
        '    let motd = fs::read_to_string("motd.txt").unwrap();\n'
        '    println!("cargo:rustc-env=SETTINGS_MOTD={}", motd.trim());\n'
        '    let banner = fs::read_to_string("banner.txt").unwrap();\n'
        '    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("banner.rs");\n'
        '    fs::write(out, format!("pub const BANNER: &str = {:?};\\n", banner.trim()))'
        '.unwrap();\n'
        '}\n')
    (settings / "src" / "lib.rs").write_text(
        'pub const MOTD: &str = env!("SETTINGS_MOTD");\n'
        'include!(concat!(env!("OUT_DIR"), "/banner.rs"));\n')
    set_generated(directory, motd=motd, banner=banner)
    write_crate(directory, name, 'fn main() {\n'
                '    println!("motd={} banner={}", settings::MOTD, settings::BANNER);\n}\n')
    manifest = directory / "Cargo.toml"
    manifest.write_text(manifest.read_text()
                        + '\n[dependencies]\nsettings = { path = "settings" }\n')
    return directory


def set_generated(directory: Path, motd: str | None = None, banner: str | None = None) -> None:
    """The values ``generated_crate``'s build script reads."""
    for file, value in (("motd.txt", motd), ("banner.txt", banner)):
        if value is not None:
            (directory / "settings" / file).write_text(value + "\n")
