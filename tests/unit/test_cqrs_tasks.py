"""The CQRS tasks in-process: names and queues, thin bodies, typed errors, the trigger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from registry import DynamicModelRegistry
from registry.errors import (
    OperationNotAllowed,
    ProjectionNotFound,
    ValidationFailed,
    VersionConflict,
)
from tasks.cqrs import ProjectTrigger
from tasks.names import queue_for
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

ORDER = {
    "type": "object",
    "properties": {"category": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["category"],
}
QUEUES = {
    "cqrs.execute_command": "cqrs", "cqrs.execute_query": "crud",
    "cqrs.define_projection": "registry", "cqrs.rebuild_projection": "cqrs",
    "cqrs.project": "cqrs", "cqrs.events": "crud", "cqrs.status": "cqrs",
}


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    registry.register_schema("Order", ORDER, "cqrs")
    app.use_registry(registry)
    yield registry
    app.close_registry()


def test_each_task_has_its_contract_name_and_queue() -> None:
    router = app.amqp.router
    for name, queue in QUEUES.items():
        assert name in app.tasks
        assert queue_for(name) == queue
        assert router.route({}, name)["queue"].name == queue
    assert "cqrs-project" in app.conf.beat_schedule


def test_commands_queries_projections_and_feed_through_tasks(
    registry: DynamicModelRegistry,
) -> None:
    created = run_task("cqrs.execute_command",
                       command={"type": "create", "model": "Order",
                                "data": {"category": "books", "amount": 4}},
                       user_id="u", user_role="admin")
    assert created["events"] == [{"type": "created", "version": 1}]
    described = run_task("cqrs.define_projection", definition={
        "name": "by_category", "model": "Order", "group_by": ["category"],
        "measures": {"n": ["count"], "total": ["sum", "amount"]}}, force=False,
        user_id="u", user_role="admin")
    assert described["columns"] == ["category", "n", "total"]
    assert run_task("cqrs.project")["events"] >= 1
    got = run_task("cqrs.execute_query",
                   query={"type": "get", "model": "Order",
                          "aggregate_id": created["aggregate_id"]},
                   user_id="u", user_role="admin", min_position=created["position"],
                   wait_seconds=1)
    assert got["category"] == "books"
    groups = run_task("cqrs.execute_query", query={"type": "projection",
                                                   "projection": "by_category"},
                      user_id="u", user_role="admin")
    assert groups["items"] == [{"category": "books", "n": 1, "total": 4.0}]
    feed = run_task("cqrs.events", after_position=0, limit=10, model="Order",
                    user_id="u", user_role="admin")
    assert [e["type"] for e in feed["events"]] == ["created"]
    assert feed["last_position"] == created["position"]
    status = run_task("cqrs.status")
    assert status["by_category"]["lag"] == 0
    assert run_task("cqrs.rebuild_projection", name="by_category") == {"events": 1, "rows": 1}


def test_a_redelivered_command_appends_once(registry: DynamicModelRegistry) -> None:
    task = app.tasks["cqrs.execute_command"]
    kwargs: dict[str, Any] = {"command": {"type": "create", "model": "Order",
                                          "data": {"category": "x"}},
                              "user_id": "u", "user_role": "admin"}
    first = task.apply(kwargs=kwargs, task_id="same-message").result
    again = task.apply(kwargs=kwargs, task_id="same-message").result
    assert first.__json__() == again.__json__()
    assert len(registry.events(0, 100, user_role="admin")["events"]) == 1


def test_typed_errors_cross_the_task_boundary(registry: DynamicModelRegistry) -> None:
    registry.register_schema("Plain", ORDER)
    with pytest.raises(OperationNotAllowed):
        run_task("cqrs.execute_command", command={"type": "create", "model": "Plain",
                                                   "data": {"category": "x"}},
                 user_id="u", user_role="admin")
    with pytest.raises(ValidationFailed):
        run_task("cqrs.execute_command", command="create", user_id="u", user_role="admin")
    with pytest.raises(ProjectionNotFound):
        run_task("cqrs.rebuild_projection", name="nothing")
    created = run_task("cqrs.execute_command", command={"type": "create", "model": "Order",
                                                         "data": {"category": "x"}},
                       user_id="u", user_role="admin")
    with pytest.raises(VersionConflict):
        run_task("cqrs.execute_command",
                 command={"type": "update", "model": "Order", "data": {"category": "y"},
                          "aggregate_id": created["aggregate_id"], "expected_version": 5},
                 user_id="u", user_role="admin")


def test_a_blocked_projection_does_not_fail_the_projector_task(
    registry: DynamicModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    member = {"type": "object", "properties": {"email": {"type": "string", "x-unique": True}},
              "required": ["email"]}
    registry.register_schema("Member", member, "cqrs")
    created = run_task("cqrs.execute_command", command={
        "type": "create", "model": "Member", "data": {"email": "a@x.org"}},
        user_id="u", user_role="admin")
    order = run_task("cqrs.execute_command", command={
        "type": "create", "model": "Order", "data": {"category": "x"}},
        user_id="u", user_role="admin")
    table = registry.model_info("Member").records.table
    with registry.database.write() as conn:  # a row written behind the commands' back
        conn.execute(sa.insert(table).values(
            id="intruder", version=1, created_at=registry.clock(),
            updated_at=registry.clock(), email="a@x.org"))
    caplog.set_level(logging.INFO, logger="registry.cqrs.projector")
    # Before, each beat failed the task with the unique index's IntegrityError (and a
    # traceback in the worker's log); now the task succeeds and the others move on.
    assert run_task("cqrs.project") == {"events": 1}
    assert run_task("cqrs.project") == {"events": 0}
    status = run_task("cqrs.status")
    assert status["records:Order"] == {"checkpoint": order["position"],
                                       "head": order["position"], "lag": 0, "blocked": None}
    blocked = status["records:Member"]["blocked"]
    assert blocked["position"] == created["position"]
    assert blocked["event"]["aggregate_id"] == created["aggregate_id"]
    assert blocked["reason"].startswith("DuplicateValue: ")
    assert [r.levelname for r in caplog.records if r.name == "registry.cqrs.projector"] == [
        "WARNING"]
    assert run_task("cqrs.rebuild_projection", name="records:Member")["rows"] == 1
    assert run_task("cqrs.status")["records:Member"]["blocked"] is None


def test_the_trigger_sends_one_projection_per_interval_after_commands() -> None:
    sent: list[int] = []
    now = [0.0]
    trigger = ProjectTrigger(lambda: sent.append(1), min_interval=1.0, clock=lambda: now[0])
    command = app.tasks["cqrs.execute_command"]
    trigger(sender=command, state="SUCCESS")
    trigger(sender=command, state="SUCCESS")
    trigger(sender=command, state="FAILURE")
    trigger(sender=app.tasks["records.read"], state="SUCCESS")
    assert len(sent) == 1
    now[0] = 2.0
    trigger(sender=command, state="SUCCESS")
    assert len(sent) == 2


@pytest.mark.parametrize("name, kwargs", [
    ("cqrs.events", {"after_position": 0, "limit": 10}),
    ("cqrs.define_projection", {"definition": {
        "name": "by_category", "model": "Order", "group_by": ["category"],
        "measures": {"n": ["count"]}}}),
])
def test_the_feed_and_definitions_require_a_role(
    registry: DynamicModelRegistry, name: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed, match="user_role"):
        run_task(name, user_id="u", **kwargs)
