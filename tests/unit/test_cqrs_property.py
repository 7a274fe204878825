"""Property: random command sequences (creates, updates that move records between groups,
deletes) give projections equal to a fold the test computes itself, and no role receives a
value it may not read through queries, declared projections or the event feed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registry import DynamicModelRegistry

CATEGORIES = ["a", "b", "c"]
SECRET = "s3cr3t-"
PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "user": ["read", "list"], "auditor": ["read", "list"]},
    "fields": {"secret": {"read_roles": ["admin"], "write_roles": ["admin"]},
               "cost": {"read_roles": ["admin", "auditor"], "write_roles": ["admin"],
                        "mask": "redact"}},
}
DEFINITION = {"name": "by_category", "model": "Item", "group_by": ["category"],
              "measures": {"n": ["count"], "qty": ["sum", "qty"], "low": ["min", "qty"],
                           "high": ["max", "qty"], "cost": ["sum", "cost"]}}


class Item(BaseModel):
    category: str
    qty: int = 0
    cost: int = 0
    secret: str = ""


steps = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(CATEGORIES), st.integers(-5, 50),
                  st.integers(0, 99)),
        st.tuples(st.just("update"), st.integers(0, 30), st.sampled_from(CATEGORIES),
                  st.integers(-5, 50)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
    ),
    max_size=25,
)


def fold(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records.values():
        groups.setdefault(record["category"], []).append(record)
    return {
        c: {"category": c, "n": len(m), "qty": sum(r["qty"] for r in m),
            "low": min(r["qty"] for r in m), "high": max(r["qty"] for r in m),
            "cost": sum(r["cost"] for r in m)}
        for c, m in groups.items()
    }


def run(registry: DynamicModelRegistry, plan: list[tuple[Any, ...]]) -> dict[str, Any]:
    records: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for step in plan:
        if step[0] == "create":
            _, category, qty, cost = step
            data = {"category": category, "qty": qty, "cost": cost, "secret": f"{SECRET}{cost}"}
            done = registry.execute_command({"type": "create", "model": "Item", "data": data},
                                            "u", "admin")
            records[done["aggregate_id"]] = data
            order.append(done["aggregate_id"])
        elif order:
            agg = order[step[1] % len(order)]
            if agg not in records:
                continue
            if step[0] == "delete":
                registry.execute_command({"type": "delete", "model": "Item",
                                          "aggregate_id": agg}, "u", "admin")
                del records[agg]
            else:
                changes = {"category": step[2], "qty": step[3]}
                registry.execute_command({"type": "update", "model": "Item",
                                          "aggregate_id": agg, "data": changes}, "u", "admin")
                records[agg].update(changes)
        if len(order) % 7 == 3:
            registry.project()  # apply in several batches, not only once at the end
    registry.project()
    return records


def leaks(value: Any) -> bool:
    """Whether a secret or a cost value appears anywhere in what a role received."""
    return SECRET in repr(value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_projections_equal_the_fold_and_roles_see_only_what_they_may(
    plan: list[tuple[Any, ...]],
) -> None:
    registry = DynamicModelRegistry()
    registry.register_model("Item", Item, "cqrs", permissions=PERMISSIONS)
    registry.define_projection(DEFINITION)
    records = run(registry, plan)

    page = registry.execute_query({"type": "projection", "projection": "by_category"},
                                  "u", "admin")
    assert {item["category"]: item for item in page["items"]} == fold(records)
    listed = registry.execute_query({"type": "list", "model": "Item", "page_size": 1000},
                                    "u", "admin")["items"]
    assert {r["id"]: {k: r[k] for k in ("category", "qty", "cost", "secret")}
            for r in listed} == records

    for role in ("user", "auditor"):
        groups = registry.execute_query({"type": "projection", "projection": "by_category"},
                                        "u", role)["items"]
        allowed = {"category", "n", "qty", "low", "high"}
        assert all(set(item) <= allowed for item in groups)  # cost sums need plain cost
        rows = registry.execute_query({"type": "list", "model": "Item", "page_size": 1000},
                                      "u", role)["items"]
        feed = registry.events(0, 1000, "Item", user_role=role)["events"]
        assert not leaks(rows) and not leaks(feed) and not leaks(groups)
        for row in rows:
            assert "secret" not in row
            assert row["cost"] == "***"  # masked for every role but the unmasked admin
        for event in feed:
            for source in (event["data"].get("state", {}),
                           *event["data"].get("changes", {}).values()):
                assert "secret" not in source or role == "admin"
    registry.close()
