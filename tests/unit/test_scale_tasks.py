"""Listing at scale through the tasks, in-process: the grammar, cursors and counts as JSON
arguments, declared indexes from a JSON Schema, and the typed errors a producer gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from registry import (
    DuplicateValue,
    DynamicModelRegistry,
    InvalidCursor,
    InvalidFilter,
    InvalidIndex,
    model_to_schema,
)
from tasks.redact import result_repr
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

ORDER = {
    "type": "object",
    "properties": {
        "number": {"type": "string", "x-unique": True},
        "total": {"type": "number", "x-index": True},
        "status": {"type": "string"},
    },
    "required": ["number", "total", "status"],
    "x-indexes": [["status", "total"]],
}


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    app.use_registry(registry)
    yield registry
    app.close_registry()


def _list(**arguments: Any) -> Any:
    return run_task("records.list", model="Order", user_id="u", user_role="user", **arguments)


def test_list_takes_operators_cursors_and_counts_as_json(registry: DynamicModelRegistry) -> None:
    entry = run_task("registry.register_model", name="Order", schema=ORDER, user_role="admin")
    assert {tuple(ix["fields"]) for ix in entry["indexes"]} == {
        ("number",), ("total",), ("status", "total")
    }
    for n in range(9):
        run_task("records.create", model="Order", user_id="a", user_role="admin",
                 data={"number": f"N{n}", "total": float(n), "status": "open" if n % 3 else "x"})
    query = {"filters": {"total": {"gte": 2}, "status": {"in": ["open"]}}, "order_by": "-total"}
    page = _list(page_size=2, **query)
    assert page["total"] == 5 and page["total_exact"] is True and page["page"] == 1
    totals = [item["total"] for item in page["items"]]
    while page["next_cursor"] is not None:
        page = _list(page_size=2, after=page["next_cursor"], **query)
        assert page["page"] is None
        totals += [item["total"] for item in page["items"]]
    assert totals == [8.0, 7.0, 5.0, 4.0, 2.0]
    assert _list(count="none")["total"] is None
    assert run_task("registry.list_models")[0]["indexes"] == entry["indexes"]


def test_a_producer_gets_typed_errors(registry: DynamicModelRegistry) -> None:
    run_task("registry.register_model", name="Order", schema=ORDER, user_role="admin")
    run_task("records.create", model="Order", user_id="a", user_role="admin",
             data={"number": "N1", "total": 1.0, "status": "open"})
    with pytest.raises(DuplicateValue) as duplicate:
        run_task("records.create", model="Order", user_id="a", user_role="admin",
                 data={"number": "N1", "total": 2.0, "status": "open"})
    assert duplicate.value.details["fields"] == ["number"]
    with pytest.raises(InvalidFilter, match="'total'"):
        _list(filters={"total": {"near": 1}})
    with pytest.raises(InvalidFilter, match="100000 values"):
        _list(filters={"total": {"in": list(range(100_000))}})
    with pytest.raises(InvalidCursor):
        _list(after="not-a-cursor.at-all")
    bad = {**ORDER, "properties": {**ORDER["properties"],
                                    "tags": {"type": "array", "items": {"type": "string"},
                                             "x-index": True}}}
    with pytest.raises(InvalidIndex, match="tags"):
        run_task("registry.register_model", name="Order", schema=bad, user_role="admin")


def test_a_cqrs_list_query_pages_by_cursor_too(registry: DynamicModelRegistry) -> None:
    run_task("registry.register_model", name="Order", schema=ORDER, operation_mode="hybrid",
             user_role="admin")
    for n in range(5):
        registry.create("Order", {"number": f"N{n}", "total": float(n), "status": "open"},
                        user_role="admin")
    query = {"type": "list", "model": "Order", "order_by": "total", "page_size": 2,
             "filters": {"total": {"lt": 4}}, "count": "exact"}
    page = registry.execute_query(query, user_role="user")
    totals = [item["total"] for item in page["items"]]
    while page["next_cursor"] is not None:
        page = registry.execute_query({**query, "after": page["next_cursor"]}, user_role="user")
        totals += [item["total"] for item in page["items"]]
    assert totals == [0.0, 1.0, 2.0, 3.0] and page["total"] == 4


def test_index_keywords_survive_the_schema_round_trip(registry: DynamicModelRegistry) -> None:
    """Pydantic -> stored schema -> rebuilt model -> schema again, as a worker or another
    registry sees the model: every index keyword is still there."""

    class Invoice(BaseModel):
        model_config = ConfigDict(json_schema_extra={"x-indexes": [["status", "total"]]})

        number: str = Field(json_schema_extra={"x-unique": True})
        total: float = Field(json_schema_extra={"x-index": True})
        status: str

    registry.register_model("Invoice", Invoice)
    exported = model_to_schema(registry.model_info("Invoice").model)
    assert exported["properties"]["number"]["x-unique"] is True
    assert exported["properties"]["total"]["x-index"] is True
    assert exported["x-indexes"] == [["status", "total"]]
    elsewhere = DynamicModelRegistry()
    try:
        elsewhere.register_schema("Invoice", exported)
        again = model_to_schema(elsewhere.model_info("Invoice").model)
        indexes = next(m for m in elsewhere.list_models() if m["name"] == "Invoice")["indexes"]
    finally:
        elsewhere.close()
    assert again["x-indexes"] == [["status", "total"]]
    assert {(tuple(ix["fields"]), ix["unique"]) for ix in indexes} == {
        (("number",), True), (("total",), False), (("status", "total"), False)
    }


def test_flower_sees_a_page_by_its_ids_and_counts_never_its_values_or_cursor() -> None:
    page = {"items": [{"id": "r-1", "version": 1, "number": "SECRET-7"}], "page": None,
            "page_size": 50, "total": 1200, "total_exact": False,
            "next_cursor": "eyJ2IjoiU0VDUkVULTcifQ.mac"}
    shown = result_repr(page)
    assert "r-1" in shown and "1200" in shown and "'total_exact': False" in shown
    assert "SECRET" not in shown and "eyJ" not in shown
