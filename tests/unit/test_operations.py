"""One operation, one object: operations are defined once and used by the client, the tasks
and the domain alike (registry/operations.py)."""

from __future__ import annotations

import datetime
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from registry import DynamicModelRegistry
from registry.errors import ValidationFailed
from registry.ids import new_id
from registry.operations import (
    Command,
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    Query,
    RecordAsOf,
    RecordHistory,
    UpdateRecord,
)
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

#: Each record task and the operation it decodes its arguments into.
TASK_OPERATIONS: dict[str, type[Command] | type[Query]] = {
    "records.create": CreateRecord,
    "records.read": GetRecord,
    "records.update": UpdateRecord,
    "records.delete": DeleteRecord,
    "records.list": ListRecords,
    "records.history": RecordHistory,
    "audit.history": RecordHistory,
    "records.as_of": RecordAsOf,
}
EXAMPLES = [
    CreateRecord(model="P", data={"name": "a"}, user_id="u", user_role="admin",
                 idempotency_key="k"),
    UpdateRecord(model="P", record_id="r", updates={"name": "b"}, user_id=None,
                 user_role="admin", expected_version=3),
    DeleteRecord(model="P", record_id="r", user_id="u", user_role="admin"),
    GetRecord(model="P", record_id="r", user_id="u", user_role="user"),
    ListRecords(model="P", user_id="u", user_role="user", filters={"name": "a"},
                order_by="-name", page=2, page_size=5),
    RecordHistory(model="P", record_id="r", user_role="user",
                  since=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)),
    RecordAsOf(model="P", record_id="r", at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
               user_id=None, user_role="user"),
]


class Product(BaseModel):
    name: str
    price: float


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    registry.register_model("Product", Product)
    app.use_registry(registry)
    yield registry
    app.close_registry()


def test_commands_and_queries_carry_the_specifications_identity() -> None:
    create = EXAMPLES[0]
    assert isinstance(create, Command) and create.ns == "commands"
    assert str(uuid.UUID(create.command_id)) == create.command_id
    assert create.timestamp.tzinfo is datetime.UTC
    read = EXAMPLES[3]
    assert isinstance(read, Query) and read.ns == "queries"
    assert str(uuid.UUID(read.query_id)) == read.query_id
    assert CreateRecord.build(model="P", data={}, user_id=None, user_role="r").command_id != (
        create.command_id
    )


def test_new_ids_are_random_version_4_uuids_in_canonical_text() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(made)
        assert str(parsed) == made
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_operations_are_frozen_and_take_no_unknown_arguments() -> None:
    with pytest.raises(ValidationError):
        EXAMPLES[3].user_role = "admin"  # type: ignore[misc]
    with pytest.raises(ValidationFailed, match="limit is not an argument here") as caught:
        ListRecords.decode({"model": "P", "user_id": None, "user_role": "r", "limit": 5})
    assert caught.value.errors == [
        {"loc": ["limit"], "msg": "is not an argument here", "type": "argument"}
    ]


@pytest.mark.parametrize("operation", EXAMPLES, ids=lambda op: type(op).__name__)
def test_an_operation_survives_the_wire(operation: Command | Query) -> None:
    """What the client sends decodes into the same operation (its identity aside)."""
    wire = operation.wire_arguments()
    assert not {"command_id", "timestamp", "query_id"} & set(wire)
    decoded = type(operation).decode(wire)
    assert decoded.wire_arguments() == wire
    assert {name: getattr(decoded, name) for name in wire} == {
        name: getattr(operation, name) for name in wire
    }


@pytest.mark.parametrize(("task", "operation"), TASK_OPERATIONS.items())
def test_each_task_takes_exactly_its_operations_arguments(
    task: str, operation: type[Command] | type[Query]
) -> None:
    run = app.tasks[task].run
    assert list(inspect.signature(run).parameters) == list(operation.wire_signature().parameters)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"model": "P", "data": [], "user_id": "u", "user_role": "r"}, "data"),
        ({"model": [], "data": {}, "user_id": "u", "user_role": "r"}, "model"),
        ({"model": "P", "data": {}, "user_id": 5, "user_role": "r"}, "user_id"),
        ({"model": "P", "data": {}, "user_id": "u", "user_role": ""}, "user_role"),
        ({"model": "P", "data": {}, "user_id": "u", "user_role": "r", "idempotency_key": 1},
         "idempotency_key"),
        ({"model": "P", "data": {"name": "a\x00b"}, "user_id": "u", "user_role": "r"}, "data"),
        ({"model": "P", "data": {"name": "\ud800"}, "user_id": "u", "user_role": "r"}, "data"),
        ({"model": "P", "data": {}, "user_role": "r"}, "user_id"),
    ],
)
def test_a_wrong_argument_is_a_validation_failure_naming_it(
    arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        CreateRecord.decode(arguments, task="records.create")
    assert [error["loc"][0] for error in caught.value.errors] == [named]
    assert f"{named} " in str(caught.value) and "records.create" in str(caught.value)


def test_a_nul_inside_data_names_the_field_too() -> None:
    with pytest.raises(ValidationFailed, match="'tags.1'") as caught:
        CreateRecord.decode(
            {"model": "P", "data": {"tags": ["a", "b\x00"]}, "user_id": None, "user_role": "r"}
        )
    assert caught.value.errors[0]["loc"] == ["data", "tags", "1"]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"expected_version": True}, "expected_version"),
        ({"expected_version": "3"}, "expected_version"),
        ({"record_id": "x" * 65}, "record_id"),
        ({"updates": None}, "updates"),
    ],
)
def test_update_arguments_are_checked_strictly(arguments: dict[str, Any], named: str) -> None:
    base = {"model": "P", "record_id": "r", "updates": {}, "user_id": None, "user_role": "r"}
    with pytest.raises(ValidationFailed) as caught:
        UpdateRecord.decode({**base, **arguments})
    assert [error["loc"][0] for error in caught.value.errors] == [named]


def test_list_paging_arguments_must_count_from_one() -> None:
    base = {"model": "P", "user_id": None, "user_role": "r"}
    for page in (0, -1, 1.5, "2", True):
        with pytest.raises(ValidationFailed, match="Page must"):
            ListRecords.decode({**base, "page": page})
    with pytest.raises(ValidationFailed, match="Page size must"):
        ListRecords.decode({**base, "page_size": 0})


def test_times_are_iso_text_or_datetimes_and_naive_means_utc() -> None:
    op = RecordHistory.decode({"model": "P", "user_role": "r", "since": "2026-01-01T10:00:00",
                               "until": datetime.datetime(2026, 1, 2, 12, tzinfo=datetime.UTC)})
    assert op.since == datetime.datetime(2026, 1, 1, 10, tzinfo=datetime.UTC)
    assert op.until is not None and op.until.tzinfo is datetime.UTC
    with pytest.raises(ValidationFailed, match="'since' must be an ISO 8601 time"):
        RecordHistory.decode({"model": "P", "user_role": "r", "since": 5})


def test_the_in_process_methods_build_the_same_operations(
    registry: DynamicModelRegistry,
) -> None:
    created = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    handled = registry.handle(
        GetRecord(model="Product", record_id=created["id"], user_id="u", user_role="admin")
    )
    assert handled == created == registry.read("Product", created["id"], "u", "admin")
    with pytest.raises(ValidationFailed, match="user_role must be a non-empty string"):
        registry.read("Product", created["id"], "u", "")


def test_a_task_takes_its_arguments_by_position_too(registry: DynamicModelRegistry) -> None:
    created = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    result = app.tasks["records.history"].apply(args=["Product", created["id"], "u", "admin"])
    assert [entry["operation"] for entry in result.result.value] == ["create"]
    missing = app.tasks["records.history"].apply(args=["Product", created["id"], "u"])
    assert isinstance(missing.result, ValidationFailed)
    assert "user_role is required" in str(missing.result)


def test_a_task_refuses_what_its_operation_refuses(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ValidationFailed, match="model must be a non-empty string"):
        run_task("records.read", model={}, record_id="r", user_id="u", user_role="admin")
    with pytest.raises(ValidationFailed, match="user_role is required"):
        run_task("audit.history", model="Product")
