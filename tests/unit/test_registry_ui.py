"""UI schemas as the registry serves them: per role, with stored overrides, for rjsf."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry, InvalidSchema, UIWidgetType


class Employee(BaseModel):
    name: str = Field(min_length=1, description="Full name", examples=["Ada Lovelace"])
    salary: float = Field(ge=0, le=1_000_000)
    ssn: str
    notes: str = ""


@pytest.fixture
def registry() -> DynamicModelRegistry:
    registry = DynamicModelRegistry()
    registry.register_model(
        "Employee",
        Employee,
        permissions={
            "roles": {"admin": ["create", "read", "update", "list"], "hr": ["read", "update"]},
            "fields": {
                "salary": {"read_roles": ["admin", "hr"], "write_roles": ["admin"]},
                "ssn": {"read_roles": ["admin"], "write_roles": ["admin"]},
            },
        },
        ui_overrides={"notes": {"help_text": "Anything HR should know"}},
    )
    return registry


def test_the_full_schema_has_every_field_and_the_stored_overrides(
    registry: DynamicModelRegistry,
) -> None:
    schema = registry.get_ui_schema("Employee")
    assert schema.model == "Employee"
    assert schema.fields["salary"].widget is UIWidgetType.SLIDER
    assert schema.fields["name"].placeholder == "Ada Lovelace"
    assert schema.fields["name"].help_text == "Full name"
    assert schema.fields["notes"].help_text == "Anything HR should know"


def test_a_role_sees_only_what_it_may_and_unwritable_fields_are_readonly(
    registry: DynamicModelRegistry,
) -> None:
    hr = registry.get_ui_schema("Employee", user_role="hr")
    assert "ssn" not in hr.fields
    assert hr.fields["salary"].readonly and not hr.fields["name"].readonly
    form = registry.export_form("Employee", user_role="hr")
    assert "ssn" not in form["schema"]["properties"]
    assert "ssn" not in form["schema"].get("required", [])
    assert "ssn" not in str(form["uiSchema"])
    assert form["uiSchema"]["salary"]["ui:readonly"] is True


def test_overrides_survive_a_second_process_and_bad_ones_are_refused(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/ui.sqlite3"
    first = DynamicModelRegistry(url)
    first.register_model("Employee", Employee, ui_overrides={"ssn": {"label": "SSN"}})
    assert DynamicModelRegistry(url).get_ui_schema("Employee").fields["ssn"].label == "SSN"
    with pytest.raises(InvalidSchema, match="colour"):
        first.register_model("Employee", Employee, ui_overrides={"colour": {"label": "x"}})
