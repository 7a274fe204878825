"""Every dependency is pinned in constraints.txt, and every install command uses it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as `psycopg[binary]>=3.1`."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not name==version"
            pins[_name(name)] = version
    return pins


def test_every_declared_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    missing = sorted({_name(req) for req in declared} - set(_pins()))
    assert not missing, f"not in constraints.txt (refresh it with .ci/lock): {missing}"


def test_installs_use_the_constraints() -> None:
    installs = [
        line
        for path in ("README.md", ".ci/run", "Dockerfile")
        for line in (ROOT / path).read_text().splitlines()
        if "pip install" in line and not line.lstrip().startswith("#")
    ]
    assert len(installs) >= 4  # README: quick start and tests; .ci/run; Dockerfile
    for line in installs:
        assert "-c constraints.txt" in line, line


def test_ci_lints_and_type_checks_before_testing() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and "pip" in line)
    steps = command.split(" && ")
    assert steps.index(".venv/bin/ruff check .") < steps.index(".venv/bin/python -m pytest")
    assert steps.index(".venv/bin/mypy") < steps.index(".venv/bin/python -m pytest")
