"""farm.yaml's YAML reading (rustfarm/farmfile/yamlsource.py, PyYAML's node tree walked
by hand) against the same done with ruamel.yaml's round-trip loader, which keeps lines
and refuses duplicate keys itself: lines of code, load time, and the messages each
gives for the farm files the loader must refuse.

    .venv/bin/python benchmarks/yaml_loading.py [--runs 50]

ruamel.yaml is not a dependency of the farm: install it where this script finds it
(``pip install --target DIR ruamel.yaml`` and PYTHONPATH=DIR) to compare; without it
only the farm's own figures are printed. Prints figures only.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rustfarm.farmfile import yamlsource  # noqa: E402
from rustfarm.farmfile.errors import Problem  # noqa: E402
from rustfarm.farmfile.yamlsource import MAX_VALUES, Mapping, Sequence, load_yaml  # noqa: E402


def ruamel_load(text: str, filename: str, problems: list) -> object:
    """load_yaml's work with ruamel.yaml: its loader keeps lines (``.lc``) and refuses a
    duplicate key; the walk still counts values (aliases are shared, not copied, but
    the reader walks every one) and refuses keys that are not text."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    try:
        data = YAML(typ="rt").load(text)
    except DuplicateKeyError as err:
        # Only the first duplicate, and neither its path nor its first line are given.
        key = err.problem.split('"')[1] if '"' in err.problem else "?"
        problems.append(Problem(filename, err.problem_mark.line + 1, key,
                                f"duplicate key '{key}'"))
        return None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = " ".join(part for part in (err.context, err.problem) if part)
        problems.append(Problem(filename, mark.line + 1 if mark else 0, "",
                                f"YAML syntax error: {what}"))
        return None
    except (YAMLError, RecursionError) as err:
        problems.append(Problem(filename, 0, "", f"YAML error: {err}"))
        return None
    left = [MAX_VALUES]

    def convert(value, path: str, line: int):
        left[0] -= 1
        if left[0] < 0:
            raise OverflowError(line)
        if isinstance(value, CommentedMap):
            result = Mapping()
            result.line, result.key_lines = value.lc.line + 1, {}
            for key in value:
                key_line = value.lc.key(key)[0] + 1 if key in value.lc.data else result.line
                if not isinstance(key, str):
                    problems.append(Problem(filename, key_line, path,
                                            f"keys must be text, not {key!r}"))
                    continue
                key_path = f"{path}.{key}" if path else key
                result[key] = convert(value[key], key_path, key_line)
                result.key_lines[key] = key_line
            return result
        if isinstance(value, CommentedSeq):
            seq = Sequence()
            seq.line, seq.item_lines = value.lc.line + 1, []
            for index, item in enumerate(value):
                item_line = value.lc.item(index)[0] + 1
                seq.append(convert(item, f"{path}[{index}]", item_line))
                seq.item_lines.append(item_line)
            return seq
        return value

    try:
        return Mapping() if data is None else convert(data, "", 1)
    except OverflowError as err:
        problems.append(Problem(filename, err.args[0], "",
                                f"more than {MAX_VALUES:,} values once its aliases are "
                                "expanded (nested anchors and aliases: a YAML alias bomb?)"))
    except RecursionError:
        problems.append(Problem(filename, 0, "", "YAML nested too deeply"))
    return None


def code_lines(source: str) -> int:
    """Lines that are neither blank nor comments nor docstrings' (roughly: no line of a
    string that stands alone)."""
    count, in_doc = 0, False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith('"""'):
            in_doc = not (stripped.count('"""') == 2 and len(stripped) > 3) and not in_doc
            continue
        if in_doc:
            if stripped.endswith('"""'):
                in_doc = False
            continue
        if stripped and not stripped.startswith("#"):
            count += 1
    return count


def billion_laughs() -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


REFUSED = {
    "two projects of one name": "projects:\n  hello:\n    source: a\n  hello:\n    source: b\n",
    "two duplicates": "farm:\n  name: a\n  name: b\nwww:\n  port: 1\n  port: 2\n",
    "syntax error": "farm:\n  name: [demo\nworkers: {}\n",
    "a list as a key": "? [a, b]\n: x\n",
    "a list of lists as a key": "? [[a], [b]]\n: x\n",
    "alias bomb": billion_laughs(),
}


def timed(load, text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        load(text, "farm.yaml", [])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_time(module: str) -> float:
    """Milliseconds a fresh interpreter takes to import ``module`` (median of 5)."""
    import os
    import subprocess
    code = f"import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], env=env,
                                                  capture_output=True, text=True,
                                                  check=True).stdout) * 1000
                             for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    text = (REPO / "farm.yaml").read_text()
    try:
        import ruamel.yaml
        have_ruamel = ruamel.yaml.__version__
    except ImportError:
        have_ruamel = None
    print(f"farm.yaml: {len(text.splitlines())} lines; median of {args.runs} loads")
    print(f"{'':34} {'PyYAML walk (farm)':>20} {'ruamel.yaml ' + (have_ruamel or '-'):>20}")
    ours = code_lines(inspect.getsource(yamlsource))
    theirs = code_lines(inspect.getsource(ruamel_load))
    print(f"{'lines of code (no docs, comments)':34} {ours:>20} {theirs:>20}")
    mine = timed(load_yaml, text, args.runs) * 1000
    other = f"{timed(ruamel_load, text, args.runs) * 1000:.1f} ms" if have_ruamel else "-"
    print(f"{'load time of farm.yaml':34} {mine:>17.1f} ms {other:>20}")
    imports = [import_time("yaml"), import_time("ruamel.yaml") if have_ruamel else None]
    print(f"{'import time (a fresh python)':34} {imports[0]:>17.1f} ms "
          f"{f'{imports[1]:.1f} ms' if imports[1] is not None else '-':>20}")
    for name, bad in REFUSED.items():
        print(f"\n{name}:")
        for label, load in (("farm", load_yaml), ("ruamel", ruamel_load)):
            if label == "ruamel" and not have_ruamel:
                continue
            problems: list = []
            started = time.perf_counter()
            try:
                load(bad, "farm.yaml", problems)
                said = "; ".join(str(p) for p in problems) or "(no problem found)"
            except Exception as err:  # what the farm would have to catch
                said = f"raised {type(err).__name__}: {err}"
            took = (time.perf_counter() - started) * 1000
            print(f"  {label:7} {took:7.1f} ms  {said[:150]}")


if __name__ == "__main__":
    main()
