"""The error tree drawn in registry/errors.py's docstring is the tree of the classes."""

from __future__ import annotations

import importlib
import pkgutil
import re

import registry
from registry import errors
from registry.errors import RegistryError

#: One drawn node: the indentation of its branch, then the class name.
_NODE = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>\w+)")


def _drawn_parents() -> dict[str, str]:
    """Each class name in the drawing, mapped to the name it hangs under."""
    lines = (errors.__doc__ or "").splitlines()
    root_at = next(i for i, line in enumerate(lines) if line.strip() == "RegistryError")
    margin = len(lines[root_at]) - len(lines[root_at].lstrip())
    parents: dict[str, str] = {}
    path = ["RegistryError"]  # path[depth] is the open node at that depth
    for line in lines[root_at + 1 :]:
        found = _NODE.match(line[margin:])
        if not found:
            break
        depth = len(found["indent"]) // 4 + 1
        del path[depth:]
        parents[found["name"]] = path[depth - 1]
        path.append(found["name"])
    return parents


def _actual_parents() -> dict[str, str]:
    """Every RegistryError subclass in the registry package, mapped to its nearest
    RegistryError base."""
    for module in pkgutil.walk_packages(registry.__path__, "registry."):
        importlib.import_module(module.name)
    parents: dict[str, str] = {}
    pending = [RegistryError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("registry"):
                base = next(b for b in sub.__mro__[1:] if issubclass(b, RegistryError))
                parents[sub.__name__] = base.__name__
                pending.append(sub)
    return parents


def test_the_drawing_parses() -> None:
    drawn = _drawn_parents()
    assert drawn["UnknownField"] == "ValidationFailed"
    assert drawn["ModelNotFound"] == "RegistryError"


def test_the_drawn_tree_is_the_class_tree() -> None:
    assert _drawn_parents() == _actual_parents()


def test_every_error_lives_in_errors_and_is_exported() -> None:
    actual = _actual_parents()
    for name in actual:
        assert getattr(errors, name, None) is not None, f"{name} is not in registry/errors.py"
        assert name in errors.__all__, f"{name} is missing from registry.errors.__all__"
