"""The domain never imports Celery, kombu, tasks or workers (DESIGN.md, STYLE.md example 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import registry

FORBIDDEN = {"celery", "kombu", "tasks", "workers"}
PACKAGE = Path(registry.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_registry_imports_nothing_of_celery_or_the_task_layers() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_roots(path) & FORBIDDEN)
        for path in PACKAGE.rglob("*.py")
        if imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_public_names_are_explicit_and_importable() -> None:
    assert sorted(registry.__all__) == registry.__all__
    for name in registry.__all__:
        assert hasattr(registry, name), name
    public = {name for name in vars(registry) if not name.startswith("_")}
    modules = {name for name, value in vars(registry).items() if type(value).__name__ == "module"}
    assert public - modules <= set(registry.__all__)
