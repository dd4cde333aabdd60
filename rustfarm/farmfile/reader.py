"""Typed reads from one YAML mapping, collecting a located problem for each bad value."""

from __future__ import annotations

import re
from typing import Any, Callable

from .errors import Problem, did_you_mean
from .yamlsource import Mapping, Sequence

_MISSING = object()

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

_TYPE_NAMES = {str: "text", int: "a whole number", bool: "true or false",
               float: "a number", list: "a list", dict: "a mapping"}


def _show(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class Section:
    """One mapping of the farm file, with the keys it allows."""

    def __init__(self, problems: list[Problem], filename: str, node: Any, path: str,
                 allowed: tuple[str, ...], line: int = 0):
        self.problems = problems
        self.filename = filename
        self.path = path
        self.line = getattr(node, "line", line)
        if node is None:
            node = Mapping()
            node.line, node.key_lines = line, {}
        if not isinstance(node, dict):
            self.error(self.line, path, f"must be a mapping, not {type_name(node)}")
            node = Mapping()
            node.line, node.key_lines = line, {}
        self.node = node
        for key in node:
            if key not in allowed:
                self.error(self.key_line(key), self.key_path(key),
                           f"unknown key{did_you_mean(key, allowed)}")

    def error(self, line: int, key: str, message: str) -> None:
        self.problems.append(Problem(self.filename, line, key, message))

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def key_line(self, key: str) -> int:
        return getattr(self.node, "key_lines", {}).get(key, self.line)

    def has(self, key: str) -> bool:
        return key in self.node

    def raw(self, key: str) -> Any:
        return self.node.get(key)

    def _absent(self, key: str, default: Any) -> Any:
        """What a key the node lacks reads as: its default, or None for a required one
        (said to be missing)."""
        if default is _MISSING:
            self.error(self.line, self.key_path(key), "missing required key")
            return None
        return default

    def _typed(self, key: str, kinds: tuple[type, ...], default: Any, describe: str) -> Any:
        if key not in self.node:
            return self._absent(key, default)
        value = self.node[key]
        # bool is an int in Python; a number key must not accept "true".
        fits = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not fits:
            self.error(self.key_line(key), self.key_path(key),
                       f"must be {describe}, not {type_name(value)}")
            return default if default is not _MISSING else None
        return value

    def text(self, key: str, default: Any = _MISSING, check: Callable[[str], str] | None = None) -> Any:
        value = self._typed(key, (str,), default, "text")
        if isinstance(value, str) and check and key in self.node:
            message = check(value)
            if message:
                self.error(self.key_line(key), self.key_path(key), message)
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None,
                maximum: int | None = None, why: str = "") -> Any:
        """A whole number; ``why`` ends the message of one out of range."""
        value = self._typed(key, (int,), default, "a whole number")
        return self._in_range(key, value, default, minimum, maximum, why)

    def number(self, key: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None, why: str = "") -> Any:
        value = self._typed(key, (int, float), default, "a number")
        value = float(value) if isinstance(value, (int, float)) else value
        return self._in_range(key, value, default, minimum, maximum, why)

    def _in_range(self, key: str, value: Any, default: Any, minimum: Any, maximum: Any,
                  why: str) -> Any:
        if not isinstance(value, (int, float)) or key not in self.node:
            return value
        if minimum is not None and value < minimum:
            message, fallback = f"must be at least {_show(minimum)}, not {_show(value)}", minimum
        elif maximum is not None and value > maximum:
            message, fallback = f"must be at most {_show(maximum)}, not {_show(value)}", maximum
        else:
            return value
        self.error(self.key_line(key), self.key_path(key), message + (f" ({why})" if why else ""))
        return default if default is not _MISSING else fallback

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (bool,), default, "true or false")

    def texts(self, key: str, default: Any = _MISSING) -> tuple[str, ...] | None:
        """A list of text; a single text is taken as a list of one."""
        if key not in self.node:
            return self._absent(key, default)
        value = self.node[key]
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            self.error(self.key_line(key), self.key_path(key),
                       f"must be a list of text, not {type_name(value)}")
            return default if default is not _MISSING else ()
        items = []
        lines = getattr(value, "item_lines", [])
        for index, item in enumerate(value):
            if not isinstance(item, str):
                line = lines[index] if index < len(lines) else self.key_line(key)
                self.error(line, f"{self.key_path(key)}[{index}]",
                           f"must be text, not {type_name(item)}")
                continue
            items.append(item)
        return tuple(items)

    def item_line(self, key: str, index: int) -> int:
        value = self.node.get(key)
        lines = getattr(value, "item_lines", [])
        return lines[index] if index < len(lines) else self.key_line(key)

    def text_mapping(self, key: str) -> dict[str, str]:
        """A mapping of text to text (environment variables, tags)."""
        value = self.node.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(self.key_line(key), self.key_path(key),
                       f"must be a mapping, not {type_name(value)}")
            return {}
        result = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                self.error(value.key_lines.get(name, self.key_line(key)),
                           f"{self.key_path(key)}.{name}", f"must be text, not {type_name(item)}")
                continue
            result[name] = str(item)
        return result

    def children(self, key: str) -> list[tuple[str, Any, int]]:
        """The entries of a mapping of named things: (name, node, line)."""
        value = self.node.get(key)
        if value is None:
            return []
        if not isinstance(value, dict):
            self.error(self.key_line(key), self.key_path(key),
                       f"must be a mapping of names, not {type_name(value)}")
            return []
        entries = []
        for name, child in value.items():
            line = value.key_lines.get(name, self.key_line(key))
            if not NAME_RE.match(name):
                self.error(line, f"{self.key_path(key)}.{name}",
                           "names use lower-case letters, digits, '-', '_' and '.'")
            entries.append((name, child, line))
        return entries

__all__ = ["Section", "Sequence", "Mapping", "NAME_RE", "type_name"]
