"""The Python code passes ruff's pyflakes and pycodestyle checks (pyproject.toml), and its
imports follow the layers the README draws."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "rustfarm", "cli", "master", "workers", "images",
                           "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# -- layers: each package imports only from the layers below it --------------------------

# Folder, package, layer (README "Layers"): a package imports only from lower layers;
# images and workers, side by side, not from each other.
LAYERS = [("rustfarm", "rustfarm", 0), ("images", "rustfarm.images", 1),
          ("workers", "rustfarm.workers", 1), ("master", "rustfarm.master", 2),
          ("cli", "rustfarm.cli", 3)]


def _package_of(module: str) -> str | None:
    for _, package, _ in sorted(LAYERS, key=lambda layer: -len(layer[1])):
        if module == package or module.startswith(package + "."):
            return package
    return None


def imports_between_packages() -> list[tuple[str, str, str]]:
    """(importing module, its package, imported package) for every import in the farm's
    Python packages that crosses from one package to another."""
    import ast
    found = []
    for folder, package, _ in LAYERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            module = ".".join([package, *parts])
            here = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = here.split(".")[: len(here.split(".")) - node.level + 1]
                        names = [".".join(base + ([node.module] if node.module else []))]
                    else:
                        names = [node.module]
                else:
                    continue
                for name in names:
                    target = _package_of(name)
                    if target and target != package:
                        found.append((module, package, target))
    return found


def test_imports_run_one_way_through_the_layers():
    layer = {package: rank for _, package, rank in LAYERS}
    wrong = sorted({f"{module} imports {target}"
                    for module, package, target in imports_between_packages()
                    if layer[target] >= layer[package]})
    assert not wrong, "imports against the layering (README, Layers):\n" + "\n".join(wrong)
    # The command line talks to a running master through its REST API, never its code.
    assert not [m for m, package, target in imports_between_packages()
                if package == "rustfarm.cli" and target == "rustfarm.master"]


# -- no import cycle, function-level imports included -------------------------------

def farm_modules() -> dict[str, Path]:
    """Every module of the farm's packages, by its dotted name."""
    found = {}
    for folder, package, _ in LAYERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts
                     if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def module_imports() -> dict[str, set[str]]:
    """What each module imports of the farm's modules, at any depth of its code."""
    import ast
    modules = farm_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        here = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                                else base)
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append(" -> ".join(path[path.index(imported):] + [imported]))
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_module_imports_itself_through_others():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    cycles = find_cycles(module_imports())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)



# -- file size: a file a reader can hold in mind -------------------------------------

LONGEST = 350
# What a longer file's module docstring says, on a line of its own, before its reason.
LONGER_BECAUSE = "Longer than 350 lines because "


def too_long_without_reason(root: Path) -> list[str]:
    """The Python files under ``root``, tests aside, over LONGEST lines whose module
    docstring gives no reason for it."""
    import ast
    found = []
    folders = [p for p in root.iterdir() if p.is_dir() and p.name != "tests"
               and not p.name.startswith(".") and not p.name.endswith(".egg-info")]
    for path in sorted([*root.glob("*.py"), *(p for f in folders for p in f.rglob("*.py"))]):
        relative = path.relative_to(root)
        text = path.read_text()
        lines = len(text.splitlines())
        if lines <= LONGEST:
            continue
        docstring = ast.get_docstring(ast.parse(text, str(path)), clean=False) or ""
        if not any(line.startswith(LONGER_BECAUSE) for line in docstring.splitlines()):
            found.append(f"{relative}: {lines} lines")
    return found


def test_no_file_is_longer_than_350_lines_without_a_reason(tmp_path):
    long = "\n".join(f"x{i} = {i}" for i in range(LONGEST + 1)) + "\n"
    (tmp_path / "bare.py").write_text(long)
    (tmp_path / "told.py").write_text(f'"""A module.\n\n{LONGER_BECAUSE}it is a table."""\n'
                                      + long)
    (tmp_path / "short.py").write_text("x = 1\n")
    assert too_long_without_reason(tmp_path) == [f"bare.py: {LONGEST + 1} lines"]
    long_files = too_long_without_reason(REPO)
    assert not long_files, (f"over {LONGEST} lines, with no line '{LONGER_BECAUSE}...' in the "
                            "module docstring:\n" + "\n".join(long_files))
