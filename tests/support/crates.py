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
