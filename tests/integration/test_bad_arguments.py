"""Arguments of the wrong kind and values no column holds, sent raw (past the client's own
checks) to real workers on PostgreSQL: each gets its typed error naming what was wrong,
nothing is written, and the worker serves the next task."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from registry.errors import ValidationFailed
from tasks.client import RegistryClient

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

ITEM = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "count": {"type": "integer", "default": 0},
        "weight": {"type": "number", "default": 1.0},
        "seen_at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                    "default": None},
    },
    "required": ["name"],
}
PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "clerk": ["read", "update", "list"]},
    "fields": {"weight": {"read_roles": ["admin"], "write_roles": ["admin", "clerk"],
                          "mask": "redact"}},
}


@pytest.fixture(scope="module")
def item(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess]
) -> Iterator[tuple[str, dict[str, Any]]]:
    model = unique("Args")
    client.register_model(model, ITEM, permissions=PERMISSIONS, user_role="admin").get()
    record = client.create(model, {"name": "ok", "weight": 2.5}, "t", "admin").get()
    yield model, record


def _total(client: RegistryClient, model: str) -> int:
    return int(client.list(model, "t", "admin").get()["total"])


CASES: list[tuple[str, str, dict[str, Any], list[Any]]] = [
    ("model is a list", "records.create",
     {"model": [], "data": {"name": "x"}, "user_id": "t", "user_role": "admin"}, ["model"]),
    ("integer past 64 bits", "records.create",
     {"data": {"name": "x", "count": 2**63}, "user_id": "t", "user_role": "admin"}, ["count"]),
    ("NaN in a float field", "records.create",
     {"data": {"name": "x", "weight": float("nan")}, "user_id": "t", "user_role": "admin"},
     ["data", "weight"]),
    ("year 1 in UTC+1", "records.create",
     {"data": {"name": "x", "seen_at": "0001-01-01T00:00:00+01:00"}, "user_id": "t",
      "user_role": "admin"}, ["seen_at"]),
    ("NUL in a filter", "records.list",
     {"filters": {"name": "o\x00k"}, "user_id": "t", "user_role": "admin"},
     ["filters", "name"]),
    ("filters is a list", "records.list",
     {"filters": [], "user_id": "t", "user_role": "admin"}, ["filters"]),
    ("history without a role", "audit.history", {}, ["user_role"]),
    ("empty user id", "records.create",
     {"data": {"name": "x"}, "user_id": "", "user_role": "admin"}, ["user_id"]),
]


@pytest.mark.parametrize(("case", "task", "arguments", "loc"), CASES,
                         ids=[case[0] for case in CASES])
def test_a_bad_argument_gets_its_typed_error_from_a_worker(
    client: RegistryClient, item: tuple[str, dict[str, Any]], case: str, task: str,
    arguments: dict[str, Any], loc: list[Any],
) -> None:
    model, record = item
    before = _total(client, model)
    with pytest.raises(ValidationFailed) as raised:
        client.send(task, **{"model": model, **arguments}).get()
    assert type(raised.value) is ValidationFailed
    assert [error["loc"] for error in raised.value.errors] == [loc]
    assert _total(client, model) == before
    assert client.read(model, record["id"], "t", "admin").get()["name"] == "ok"


def test_a_guess_at_a_field_the_role_cannot_read_looks_the_same_right_or_wrong(
    client: RegistryClient, item: tuple[str, dict[str, Any]]
) -> None:
    model, _ = item
    record = client.create(model, {"name": "guess", "weight": 7.0}, "t", "admin").get()
    right = client.update(model, record["id"], {"weight": 7.0}, "c", "clerk").get()
    wrong = client.update(model, record["id"], {"weight": 8.0}, "c", "clerk").get()
    assert (right["version"], wrong["version"]) == (2, 3)
    assert right["weight"] == wrong["weight"] == "***"
