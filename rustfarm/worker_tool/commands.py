"""The worker tool's commands (each module says what its command does and answers).

A command's module is imported when it runs: the rustc wrappers run once per crate
and import only what they use.
"""

from __future__ import annotations

import importlib
import sys

# Command: its module, its arguments, and whether it answers with a result (the
# compile cache's rustc wrappers, which cargo runs as RUSTC_WRAPPER, are rustc).
COMMANDS = {
    "unpack": ("unpack", "SNAPSHOT.tar.gz|- DEST", True),
    "toolchain": ("toolchain", "CRATE_DIR PROJECT PINNED|-", True),
    "dependencies": ("dependencies", "(a JSON request on standard input)", True),
    "compile-cache": ("compile_cache", "setup|stats", True),
    "package": ("package", "ARCHIVE BINDIR BINARY...|[--only NAME,...] --built-by CRATE_DIR "
                "CARGO_COMMAND...", True),
    "cache-forward": ("cache_forward", "SOCKET PORT", True),
    "crate-cache": ("crate_cache", "RUSTC ARGS...", False),
    "sccache-pipelined": ("sccache_pipelined", "RUSTC ARGS...", False),
}


def usage() -> str:
    return "usage: farm_worker_tool COMMAND ARGS...\n" + "".join(
        f"  {name} {arguments}\n" for name, (_, arguments, _) in COMMANDS.items())


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = COMMANDS.get(argv[0]) if argv else None
    if command is None:
        sys.stderr.write(usage())
        sys.exit(2)
    module_name, arguments, answers = command
    module = importlib.import_module(f".{module_name}", __package__)
    if not answers:
        module.main(argv[1:])
        return
    try:
        module.main(argv[1:])
    except ValueError as err:
        # Arguments that do not fit the command (too few or too many, not a number).
        from .protocol import fail
        fail(f"{argv[0]}: {err} (usage: {argv[0]} {arguments})")
