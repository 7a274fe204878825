"""The domain never imports Celery, kombu, tasks or workers (DESIGN.md, STYLE.md example 1),
and no module reaches into another's private attributes (STYLE.md)."""

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


# -- private attributes -------------------------------------------------------------------

ROOT = PACKAGE.parent
PROJECT_PACKAGES = ("registry", "tasks", "workers", "inspector", "bench")
#: Underscored attributes that belong to a library's API as we use it.
LIBRARY_ATTRIBUTES = {
    "_mapping",  # SQLAlchemy's Row._mapping, documented public despite its name
    "_copy",  # SQLAlchemy's Column._copy: a column for another table (Column.copy is deprecated)
    "_deliver",  # kombu: tasks/redis_broker.py hands a message on as kombu's channel does
}


def private_reach_ins(path: Path) -> list[str]:
    """`other._name` accesses and `from module import _name` imports in a module, except to
    names the module defines or assigns as `self._name` / `cls._name` (its own classes'
    state and methods) and calls through `super()` (a subclass's own inheritance)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    } | {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            and not (isinstance(node.value, ast.Call) and ast.unparse(node.value) == "super()")
            and node.attr not in own | LIBRARY_ATTRIBUTES
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_modules_private_attributes() -> None:
    found = [
        reach_in
        for package in PROJECT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for reach_in in private_reach_ins(path)
    ]
    assert found == []
