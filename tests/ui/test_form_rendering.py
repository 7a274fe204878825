"""Exported forms render in react-jsonschema-form itself (React's server renderer, in Node).

The export's JSON Schema and uiSchema go to `tests/ui/render/render.mjs`, which renders them
with @rjsf/core as a page's first render would; the HTML shows which input each field became,
which fields a role cannot see are absent, and which it cannot write are read-only.
"""

from __future__ import annotations

import datetime
import enum
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AnyUrl, BaseModel, EmailStr, Field

from registry import DynamicModelRegistry

#: Node.js and npm render the forms; the first run installs the renderer from the npm registry.
pytestmark = pytest.mark.node

RENDERER = Path(__file__).resolve().parent / "render"


class Skill(enum.StrEnum):
    PYTHON = "python"
    SQL = "sql"


class Employee(BaseModel):
    name: str = Field(min_length=1, description="Full name")
    email: EmailStr
    password: str
    homepage: AnyUrl | None = None
    bio: str = Field(default="", max_length=2000)
    age: int = Field(ge=18, le=99)
    salary: float = Field(gt=0)
    hired: datetime.date
    team: Literal["dev", "ops"] = "dev"
    skills: list[Skill] = []
    active: bool = True
    ssn: str


@pytest.fixture(scope="module")
def render() -> Callable[[dict[str, Any]], str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed to render forms with react-jsonschema-form"
    if not (RENDERER / "node_modules" / "@rjsf" / "core").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=RENDERER, check=True, capture_output=True, timeout=300,
        )

    def run(form: dict[str, Any]) -> str:
        done = subprocess.run(
            [node, "render.mjs"], cwd=RENDERER, input=json.dumps(form),
            capture_output=True, text=True, timeout=60, check=True,
        )
        return done.stdout

    return run


@pytest.fixture(scope="module")
def registry() -> DynamicModelRegistry:
    registry = DynamicModelRegistry()
    registry.register_model(
        "Employee",
        Employee,
        permissions={
            "roles": {"admin": ["create", "read", "update", "list"], "hr": ["read", "update"]},
            "fields": {
                "ssn": {"read_roles": ["admin"], "write_roles": ["admin"]},
                "salary": {"read_roles": ["admin", "hr"], "write_roles": ["admin"]},
            },
        },
    )
    return registry


def test_every_widget_renders_as_its_input(
    render: Callable[[dict[str, Any]], str], registry: DynamicModelRegistry
) -> None:
    html = render(registry.export_form("Employee", "admin"))
    expected = [
        'id="root_name"',
        'id="root_email" name="root_email" class="form-control" label="Email" required="" '
        'placeholder="" type="email"',
        'type="password"',
        'id="root_homepage"',
        '<textarea id="root_bio"',
        'type="range" min="18" max="99"',
        'id="root_salary" name="root_salary" class="form-control" label="Salary" required="" '
        'placeholder="" type="number"',
        'type="date"',
        '<select id="root_team"',
        'type="checkbox" id="root_skills-0"',
        'type="checkbox" id="root_active"',
        'id="root_ssn"',
    ]
    missing = [piece for piece in expected if piece not in html]
    assert missing == [], html


def test_a_role_gets_no_trace_of_hidden_fields_and_read_only_inputs(
    render: Callable[[dict[str, Any]], str], registry: DynamicModelRegistry
) -> None:
    html = render(registry.export_form("Employee", "hr"))
    assert "root_ssn" not in html and "Ssn" not in html
    salary = html[html.index('id="root_salary"') :].split(">", 1)[0]
    assert 'readonly=""' in salary
    name = html[html.index('id="root_name"') :].split(">", 1)[0]
    assert "readonly" not in name
