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


def module_level_roots(path: Path) -> set[str]:
    """Roots imported at module level (not inside a function, where imports run lazily)."""
    roots = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_inspector_imports_nothing_of_the_registry_or_the_task_layers() -> None:
    import inspector

    package = Path(inspector.__file__).parent
    forbidden = FORBIDDEN | {"registry"}
    offenders = {
        str(path.relative_to(package)): sorted(imported_roots(path) & forbidden)
        for path in package.rglob("*.py")
        if imported_roots(path) & forbidden
    }
    assert offenders == {}
    assert sorted(inspector.__all__) == inspector.__all__
    for name in inspector.__all__:
        assert hasattr(inspector, name), name


def test_registry_imports_the_inspector_only_lazily() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "inspector" in module_level_roots(path)
    ]
    assert offenders == []
