"""Property: no role ever receives a field value it may not read, through read or list.

For random field rules (read roles, masks) and random records, every value a role receives is
either the stored value (the role is unmasked, or may read an unmasked field), or the mask's
output (a masked field), and a field the role may not read and that has no mask is absent.
"""

from __future__ import annotations

import ast
import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import registry as registry_package
from registry import DynamicModelRegistry, FieldPermission, ModelPermissions
from registry.permissions import BUILTIN_MASKS

ROLES = ["admin", "user", "manager", "guest"]
FIELDS = ["name", "salary", "email", "notes"]


class Person(BaseModel):
    name: str
    salary: int
    email: str
    notes: str = ""


rules = st.fixed_dictionaries(
    {},
    optional={
        field: st.tuples(
            st.sets(st.sampled_from(ROLES)),
            st.one_of(st.none(), st.sampled_from(sorted(BUILTIN_MASKS))),
        )
        for field in FIELDS
    },
)
#: Text a database column can hold: no NUL, no lone surrogates (the registry refuses both
#: with ValidationFailed, as the storage contract shows).
storable = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
text = st.text(alphabet=storable, max_size=8)
people = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.text(alphabet=storable, min_size=1, max_size=8),
            "salary": st.integers(min_value=0, max_value=10**9),
            "email": st.emails(),
            "notes": text,
        }
    ),
    min_size=1,
    max_size=4,
)


def expected_view(record: dict[str, Any], field_rules: dict[str, Any], role: str) -> dict[str, Any]:
    view = {}
    for field, value in record.items():
        rule = field_rules.get(field)
        if rule is None or role == "admin":
            view[field] = value
            continue
        read_roles, mask = rule
        if mask is not None:
            view[field] = BUILTIN_MASKS[mask](value)
        elif role in read_roles:
            view[field] = value
    return view


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_rules=rules, records=people, role=st.sampled_from(ROLES))
def test_no_role_receives_a_value_it_may_not_read(
    field_rules: dict[str, Any], records: list[dict[str, Any]], role: str
) -> None:
    registry = DynamicModelRegistry()
    registry.register_model(
        "Person",
        Person,
        permissions={
            "roles": {r: ["create", "read", "list"] for r in ROLES},
            "fields": {
                field: {
                    "read_roles": sorted(read_roles),
                    "write_roles": ["admin"],
                    **({"mask": mask} if mask else {}),
                }
                for field, (read_roles, mask) in field_rules.items()
            },
        },
    )
    stored = [registry.create("Person", data, user_role="admin") for data in records]
    for record in stored:
        assert registry.read("Person", record["id"], user_role=role) == expected_view(
            record, field_rules, role
        )
    listed = registry.list("Person", user_role=role, page_size=10)["items"]
    assert sorted(map(repr, listed)) == sorted(
        repr(expected_view(record, field_rules, role)) for record in stored
    )
    registry.close()


def test_the_seed_rule_holds_for_a_role_in_read_roles_with_a_mask() -> None:
    permissions = ModelPermissions("Product", unmasked_roles=["admin", "auditor"])
    permissions.field_permissions["price"] = FieldPermission(
        "price", read_roles={"admin", "manager"}, mask="redact"
    )
    assert permissions.view({"price": 10}, "manager") == {"price": "***"}
    assert permissions.view({"price": 10}, "admin") == {"price": 10}
    assert permissions.view({"price": 10}, "auditor") == {"price": 10}  # the model's own list


# -- every public masking path gives what the rule above gives ------------------------------


def registry_with(field_rules: dict[str, Any]) -> DynamicModelRegistry:
    """Every role may do everything, so that each path can be taken as any role."""
    registry = DynamicModelRegistry()
    registry.register_model(
        "Person",
        Person,
        permissions={
            "roles": {r: ["create", "read", "update", "list"] for r in ROLES},
            "fields": {
                field: {"read_roles": sorted(read_roles), "write_roles": ROLES,
                        **({"mask": mask} if mask else {})}
                for field, (read_roles, mask) in field_rules.items()
            },
        },
    )
    return registry


def seen_as_ui(registry: DynamicModelRegistry, role: str) -> dict[str, str]:
    """How a role's UI schema shows each field: plain, masked, or (absent) not at all."""
    fields = registry.get_ui_schema("Person", user_role=role).fields
    return {name: "masked" if field.masked else "plain" for name, field in fields.items()}


def expected_ui(field_rules: dict[str, Any], role: str) -> dict[str, str]:
    probe = {field: object() for field in FIELDS}
    view = expected_view(probe, field_rules, role)
    return {name: "plain" if view[name] is probe[name] else "masked" for name in view}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_rules=rules, records=people, role=st.sampled_from(ROLES),
       change=st.fixed_dictionaries({"name": st.text(alphabet=storable, min_size=1,
                                                     max_size=8), "salary": st.integers(0, 99)}))
def test_every_public_masking_path_agrees_with_the_rule(
    field_rules: dict[str, Any], records: list[dict[str, Any]], role: str,
    change: dict[str, Any],
) -> None:
    """Create, read, list, update results, history (old and new values), as_of, UI schemas
    and `ModelPermissions.view` / `view_changes` all give the role exactly `expected_view`."""
    registry = registry_with(field_rules)
    permissions = registry.permissions["Person"]
    created = registry.create("Person", records[0], user_role=role)
    stored = registry.read("Person", created["id"], user_role="admin")
    assert created == expected_view(stored, field_rules, role)
    assert permissions.view(stored, role) == expected_view(stored, field_rules, role)

    updated = registry.update("Person", stored["id"], change, user_role=role)
    after = registry.read("Person", stored["id"], user_role="admin")
    assert updated == expected_view(after, field_rules, role)
    assert registry.read("Person", stored["id"], user_role=role) == expected_view(
        after, field_rules, role)
    [listed] = registry.list("Person", user_role=role)["items"]
    assert listed == expected_view(after, field_rules, role)
    assert registry.as_of("Person", stored["id"], after_time(after), user_role=role) == (
        expected_view(after, field_rules, role))

    for entry in registry.history("Person", stored["id"], user_role=role):
        [raw] = [e for e in registry.history("Person", stored["id"], user_role="admin")
                 if e.metadata == entry.metadata]
        for side in ("old", "new"):
            shown = {f: c[side] for f, c in entry.changes.items()}
            plain = {f: c[side] for f, c in raw.changes.items() if c[side] is not None}
            present = {f: v for f, v in shown.items() if v is not None}
            assert present == expected_view(plain, field_rules, role)
        assert permissions.view_changes(raw.changes, role) == entry.changes
    assert seen_as_ui(registry, role) == expected_ui(field_rules, role)
    registry.close()


def after_time(record: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(record["updated_at"]) + datetime.timedelta(seconds=1)


#: Where, in registry/, a field's mask may be touched: stored, copied, and decided on.
MASK_HANDLERS = {"__init__", "mask", "to_dict", "copy", "field_visibility"}


def test_only_field_visibility_decides_on_masks() -> None:
    """A second place applying `mask_function` would be a second rule."""
    found = set()
    for path in Path(registry_package.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and node.attr in ("mask_function",
                                                                     "apply_mask"):
                    found.add((path.name, function.name))
    assert {name for _, name in found} <= MASK_HANDLERS, found
    assert {file for file, _ in found} == {"permissions.py"}
    assert not hasattr(FieldPermission, "apply_mask")
