"""`dmr cqrs` in-process: commands, queries, the feed, projections and status."""

from __future__ import annotations

import json

from registry import DynamicModelRegistry
from tests.unit.test_cli import _json, dmr, registry  # noqa: F401  (the fixture)

ORDER = {"type": "object", "properties": {"category": {"type": "string"},
                                          "amount": {"type": "number"}},
         "required": ["category"]}


def test_commands_queries_projections_and_status(
    registry: DynamicModelRegistry,  # noqa: F811
) -> None:
    registry.register_schema("Order", ORDER, "cqrs")
    created = _json(dmr("cqrs", "command", "--json", input=json.dumps(
        {"type": "create", "model": "Order", "data": {"category": "books", "amount": 2}})))
    assert created["events"] == [{"type": "created", "version": 1}]
    got = _json(dmr("cqrs", "query", json.dumps(
        {"type": "get", "model": "Order", "aggregate_id": created["aggregate_id"]}),
        "--min-position", str(created["position"]), "--wait", "2", "--json"))
    assert got["category"] == "books"
    defined = _json(dmr("cqrs", "define", json.dumps(
        {"name": "by_category", "model": "Order", "group_by": ["category"],
         "measures": {"n": ["count"]}}), "--json"))
    assert defined["table"] == "dmr_p_by_category"
    page = _json(dmr("cqrs", "query", json.dumps({"type": "projection",
                                                  "projection": "by_category"}),
                     "--min-position", str(created["position"]), "--wait", "2", "--json"))
    assert page["items"] == [{"category": "books", "n": 1}]
    feed = _json(dmr("cqrs", "events", "--model", "Order", "--json"))
    assert [e["type"] for e in feed["events"]] == ["created"]
    assert _json(dmr("cqrs", "rebuild", "by_category", "--json")) == {"events": 1, "rows": 1}
    status = _json(dmr("cqrs", "status", "--json"))
    assert status["by_category"]["lag"] == 0
    table = dmr("cqrs", "status")
    assert table.exit_code == 0 and "by_category" in table.output


def test_a_refused_command_is_exit_1(registry: DynamicModelRegistry) -> None:  # noqa: F811
    registry.register_schema("Order", ORDER)  # crud: commands are refused
    result = dmr("cqrs", "command", json.dumps(
        {"type": "create", "model": "Order", "data": {"category": "x"}}))
    assert result.exit_code == 1 and "OperationNotAllowed" in result.output
