"""CQRS through real worker processes on PostgreSQL and RabbitMQ: a cqrs model end to end
(commands, the triggered projector, read-your-writes, a declared projection, the feed, typed
errors) and a hybrid one (CRUD and commands, both read back at once)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from registry.errors import (
    OperationNotAllowed,
    PermissionDenied,
    ProjectionNotFound,
    VersionConflict,
)
from tasks.client import RegistryClient
from tests.integration.conftest import unique

pytestmark = pytest.mark.integration


class Order(BaseModel):
    category: str
    status: str = "open"
    amount: float = 0
    note: str = ""


PERMISSIONS = {"roles": {"admin": ["create", "read", "update", "delete", "list"],
                         "user": ["read", "list"]},
               "fields": {"note": {"read_roles": ["admin"], "write_roles": ["admin"]}}}


@pytest.fixture(scope="module")
def cqrs_worker(start_worker: Any) -> Any:
    return start_worker("cq", queues="registry,crud,cqrs", concurrency=2)


def command(client: RegistryClient, body: dict[str, Any], role: str = "admin") -> Any:
    return client.execute_command(body, "svc", role).get(timeout=60)


def test_a_cqrs_model_end_to_end(client: RegistryClient, cqrs_worker: Any) -> None:
    model = unique("Order")
    client.register_model(model, Order, "cqrs", permissions=PERMISSIONS,
                          user_role="admin").get(timeout=60)
    with pytest.raises(OperationNotAllowed):
        client.create(model, {"category": "x"}, "svc", "admin").get(timeout=60)
    created = [command(client, {"type": "create", "model": model,
                                "data": {"category": c, "amount": a, "status": "paid",
                                         "note": "secret"}})
               for c, a in (("books", 10), ("books", 5), ("toys", 7))]
    moved = command(client, {"type": "update", "model": model,
                             "aggregate_id": created[1]["aggregate_id"],
                             "data": {"category": "toys"}, "expected_version": 1})
    assert moved["version"] == 2
    with pytest.raises(VersionConflict):
        command(client, {"type": "update", "model": model,
                         "aggregate_id": created[1]["aggregate_id"],
                         "data": {"amount": 1}, "expected_version": 1})
    # Read your writes: the command's trigger runs the projector on the worker.
    record = client.execute_query(
        {"type": "get", "model": model, "aggregate_id": created[1]["aggregate_id"]},
        "svc", "user", min_position=moved["position"], wait_seconds=10,
    ).get(timeout=60)
    assert record["category"] == "toys" and "note" not in record
    name = f"sales_{model.lower()}"
    client.define_projection({"name": name, "model": model, "group_by": ["category"],
                              "measures": {"n": ["count"], "total": ["sum", "amount"]}},
                             "svc", "admin").get(timeout=60)
    groups = client.execute_query({"type": "projection", "projection": name,
                                   "order_by": "category"},
                                  "svc", "user", min_position=moved["position"],
                                  wait_seconds=10).get(timeout=60)
    assert groups["items"] == [{"category": "books", "n": 1, "total": 10.0},
                               {"category": "toys", "n": 2, "total": 12.0}]
    feed = client.events(0, 100, "svc", "user", model=model).get(timeout=60)
    assert [e["type"] for e in feed["events"]] == ["created"] * 3 + ["updated"]
    assert all("note" not in e["data"]["state"] for e in feed["events"])
    assert client.rebuild_projection(name).get(timeout=60) == {"events": 4, "rows": 2}
    status = client.projection_status().get(timeout=60)
    assert status[name]["checkpoint"] >= moved["position"]
    with pytest.raises(ProjectionNotFound):
        client.execute_query({"type": "projection", "projection": "none_such"},
                             "svc", "admin").get(timeout=60)
    with pytest.raises(PermissionDenied):
        command(client, {"type": "create", "model": model, "data": {"category": "x"}},
                role="user")


def test_a_hybrid_model_reads_its_writes_at_once(
    client: RegistryClient, cqrs_worker: Any
) -> None:
    model = unique("Shop")
    client.register_model(model, Order, "hybrid", user_role="admin").get(timeout=60)
    record = client.create(model, {"category": "books", "amount": 3}, "svc", "admin").get(
        timeout=60)
    assert client.read(model, record["id"], "svc", "admin").get(timeout=60) == record
    done = command(client, {"type": "update", "model": model, "aggregate_id": record["id"],
                            "data": {"amount": 4}})
    assert client.read(model, record["id"], "svc", "admin").get(timeout=60)["amount"] == 4
    updated = client.update(model, record["id"], {"status": "paid"}, "svc", "admin",
                            expected_version=done["version"]).get(timeout=60)
    assert updated["version"] == 3
    feed = client.events(0, 1000, "svc", "admin", model=model).get(timeout=60)
    assert [(e["type"], e["version"]) for e in feed["events"]] == \
        [("created", 1), ("updated", 2), ("updated", 3)]
