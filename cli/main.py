"""The `farm` command: parses its arguments (arguments.py), runs the subcommand
(commands.py) and turns the farm's errors into messages and exit codes."""

from __future__ import annotations

import argcomplete

from rustfarm.errors import FarmError
from rustfarm.farmfile import FarmFileError
from rustfarm.progress import summarised, warn

from .arguments import parser


def main(argv: list[str] | None = None) -> int:
    top = parser()
    # Shell completion: eval "$(register-python-argcomplete farm)" (README).
    argcomplete.autocomplete(top)
    args = top.parse_args(argv)
    try:
        return args.func(args)
    except FarmFileError as err:
        for line in summarised(str(problem) for problem in err.problems):
            warn(line)
        return 2
    except FarmError as err:
        for line in summarised(f"farm: {err}".splitlines()):
            warn(line)
        return 1
    except KeyboardInterrupt:
        warn("farm: interrupted")
        return 130
