"""Property: no role ever receives a field value it may not read, through read or list.

For random field rules (read roles, masks) and random records, every value a role receives is
either the stored value (the role is unmasked, or may read an unmasked field), or the mask's
output (a masked field), and a field the role may not read and that has no mask is absent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registry import DynamicModelRegistry, FieldPermission
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
    rule = FieldPermission("price", read_roles={"admin", "manager"}, mask="redact")
    assert rule.apply_mask(10, "manager") == "***"
    assert rule.apply_mask(10, "admin") == 10
