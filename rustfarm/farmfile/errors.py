"""Problems found in a farm file, each one line: file, line, key and what is wrong."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    filename: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}" if self.line else self.filename
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class FarmFileError(Exception):
    """The farm file cannot be used; ``problems`` says every reason."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.line, p.key))
        super().__init__("\n".join(str(p) for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.78)
    return f" (did you mean '{close[0]}'?)" if close else ""
