"""Read YAML keeping the line of every key and item, and refusing duplicate keys.

PyYAML silently keeps the last of two equal keys; a farm file with two projects
of one name must be an error instead, so the node tree is walked by hand.

Walking by hand also expands aliases by hand: a few lines of nested anchors (the
"billion laughs") expand to billions of values, so the walk counts the values it
makes and gives up beyond :data:`MAX_VALUES`.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import Problem

# A farm file with every target and many projects holds a few thousand values.
MAX_VALUES = 100_000


class Mapping(dict):
    """A dict that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class Sequence(list):
    """A list that remembers the line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _TooManyValues(Exception):
    def __init__(self, node: yaml.Node):
        self.line = _line(node)


class _Converter(yaml.constructor.SafeConstructor):
    def __init__(self, problems: list[Problem], filename: str):
        super().__init__()
        self.problems = problems
        self.filename = filename
        self.values_left = MAX_VALUES
        self.own_keys: dict[int, frozenset[int]] = {}

    def count(self, node: yaml.Node, values: int = 1) -> None:
        self.values_left -= values
        if self.values_left < 0:
            raise _TooManyValues(node)

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Flattening adds the merged keys (<<: *alias) to the node: remember its own first.
        self.own_keys.setdefault(id(node), frozenset(id(key) for key, _ in node.value))
        super().flatten_mapping(node)
        # Merged entries are copied: nested merges multiply them.
        self.count(node, len(node.value))

    def convert(self, node: yaml.Node, path: str) -> Any:
        self.count(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            seq = Sequence()
            seq.line = _line(node)
            seq.item_lines = []
            for index, item in enumerate(node.value):
                seq.append(self.convert(item, f"{path}[{index}]"))
                seq.item_lines.append(_line(item))
            return seq
        return self.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: str) -> Mapping:
        # Keys merged in (<<: *alias) may be given again: the mapping's own key wins,
        # and of merged ones the last, as PyYAML does. Only its own keys may not repeat.
        self.flatten_mapping(node)
        own = self.own_keys[id(node)]
        merged: set[str] = set()
        result = Mapping()
        result.line = _line(node)
        result.key_lines = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                # Never built: a list or mapping key could be an alias bomb.
                self.problems.append(Problem(self.filename, _line(key_node), path,
                                             f"keys must be text, not a {key_node.id}"))
                continue
            key = self.construct_object(key_node)
            key_path = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                self.problems.append(Problem(self.filename, _line(key_node), key_path,
                                             f"keys must be text, not {key!r}"))
                continue
            if key in result and key not in merged:
                self.problems.append(Problem(
                    self.filename, _line(key_node), key_path,
                    f"duplicate key '{key}' (first defined on line {result.key_lines[key]})"))
                continue
            if id(key_node) in own:
                merged.discard(key)
            else:
                merged.add(key)
            result[key] = self.convert(value_node, key_path)
            result.key_lines[key] = _line(key_node)
        return result


def load_yaml(text: str, filename: str, problems: list[Problem]) -> Any:
    """Parse ``text``; syntax errors and duplicate keys are added to ``problems``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        what = " ".join(part for part in (err.context, err.problem) if part)
        problems.append(Problem(filename, line, "", f"YAML syntax error: {what}"))
        return None
    except yaml.YAMLError as err:
        problems.append(Problem(filename, 0, "", f"YAML error: {err}"))
        return None
    except RecursionError:
        problems.append(Problem(filename, 0, "", "YAML nested too deeply"))
        return None
    if node is None:
        return Mapping()
    try:
        return _Converter(problems, filename).convert(node, "")
    except yaml.MarkedYAMLError as err:
        # e.g. a merge key (<<) given something that is not a mapping
        line = err.problem_mark.line + 1 if err.problem_mark else 0
        problems.append(Problem(filename, line, "", f"YAML error: {err.problem}"))
    except _TooManyValues as err:
        problems.append(Problem(filename, err.line, "",
                                f"more than {MAX_VALUES:,} values once its aliases are expanded "
                                "(nested anchors and aliases: a YAML alias bomb?)"))
    except RecursionError:
        problems.append(Problem(filename, 0, "", "YAML nested too deeply"))
    return None
