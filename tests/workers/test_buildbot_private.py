"""The farm's reach into Buildbot's private methods and attributes is what Buildbot
has: each of workers/buildbot_private.py's UPSTREAM still exists with the signature
it was written against, so an upgrade that changes one fails here, naming it."""

from __future__ import annotations

import inspect

import pytest

from rustfarm.workers.buildbot_private import UPSTREAM


def _attribute_seen(cls, name: str) -> bool:
    """A private attribute Buildbot's code of ``cls`` sets (``self.NAME = ...``)."""
    source = "".join(inspect.getsource(klass) for klass in cls.__mro__
                     if klass.__module__.startswith("buildbot"))
    return f"self.{name} =" in source or f"self.{name}:" in source


@pytest.mark.parametrize("cls, name", list(UPSTREAM), ids=lambda v: getattr(v, "__name__", v))
def test_upstream_still_has_what_the_farm_overrides_or_uses(cls, name):
    expected = UPSTREAM[(cls, name)]
    if expected == "attribute":
        assert _attribute_seen(cls, name), f"{cls.__name__}.{name} is gone"
        return
    found = inspect.getattr_static(cls, name, None)
    assert found is not None, f"{cls.__name__}.{name} is gone"
    function = getattr(found, "fn", found)     # a debounced method wraps its function
    assert str(inspect.signature(function)) == expected, f"{cls.__name__}.{name} changed"


def test_no_other_module_overrides_a_private_buildbot_method():
    """Private names of Buildbot's classes are defined nowhere but in the compatibility
    module (the farm's own private helpers have names Buildbot does not use)."""
    import ast
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    private = {name for _, name in UPSTREAM}
    found = []
    for folder in ("master", "workers", "cli", "rustfarm"):
        for path in (repo / folder).rglob("*.py"):
            if path.name == "buildbot_private.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and node.name in private:
                    found.append(f"{path.relative_to(repo)}: def {node.name}")
                if isinstance(node, ast.Attribute) and node.attr in private:
                    found.append(f"{path.relative_to(repo)}: .{node.attr}")
    assert not found, "\n".join(found)
