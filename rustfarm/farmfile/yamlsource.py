"""Read YAML keeping the line of every key and item, and refusing duplicate keys.

PyYAML silently keeps the last of two equal keys; a farm file with two projects
of one name must be an error instead, so the node tree is walked by hand.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import Problem


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


class _Converter(yaml.constructor.SafeConstructor):
    def __init__(self, problems: list[Problem], filename: str):
        super().__init__()
        self.problems = problems
        self.filename = filename

    def convert(self, node: yaml.Node, path: str) -> Any:
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
        self.flatten_mapping(node)
        result = Mapping()
        result.line = _line(node)
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            key_path = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                self.problems.append(Problem(self.filename, _line(key_node), key_path,
                                             f"keys must be text, not {key!r}"))
                continue
            if key in result:
                self.problems.append(Problem(
                    self.filename, _line(key_node), key_path,
                    f"duplicate key '{key}' (first defined on line {result.key_lines[key]})"))
                continue
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
    if node is None:
        return Mapping()
    return _Converter(problems, filename).convert(node, "")
