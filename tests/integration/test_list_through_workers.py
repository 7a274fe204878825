"""A page through a real worker is the page the registry gives in-process: the same keys in the
same order, the same values, and the same JSON types (an integer stays an integer, a float a
float, times, decimals and UUIDs the same text), for every kind of field, masked fields and
empty pages included."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry
from tasks.client import RegistryClient

from .conftest import unique

pytestmark = pytest.mark.integration


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Every(BaseModel):
    name: str
    count: int = Field(json_schema_extra={"x-index": True})
    ratio: float
    price: decimal.Decimal = Field(decimal_places=2)
    active: bool
    day: datetime.date
    at: datetime.datetime
    alarm: datetime.time
    token: uuid.UUID
    size: Size
    tags: list[str]
    extra: dict[str, Any] | None = None
    secret: str | None = None


#: `secret` is masked for other roles than admin, `alarm` hidden from them.
PERMISSIONS = {"fields": {
    "secret": {"read_roles": ["admin"], "mask": "partial"},
    "alarm": {"read_roles": ["admin"]},
}}


def every(n: int) -> dict[str, Any]:
    return {
        "name": f"item {n}",
        "count": n,
        "ratio": n + 0.5 if n % 2 else float(n),
        "price": f"{n}.50",
        "active": n % 2 == 0,
        "day": f"2026-03-{n + 1:02d}",
        "at": f"2026-03-01T10:00:0{n}.123456+02:00",
        "alarm": f"07:3{n}:00",
        "token": str(uuid.UUID(int=n + 1)),
        "size": "s" if n % 2 else "l",
        "tags": ["a", str(n)],
        "extra": None if n == 2 else {"n": n, "nested": [1.5, True, None]},
        "secret": None if n == 3 else f"hidden {n}",
    }


@pytest.fixture(scope="module")
def local(database_url: str) -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(database_url)
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def model(local: DynamicModelRegistry, workers: Any) -> str:
    name = unique("Every")
    local.register_model(name, Every, permissions=PERMISSIONS)
    for n in range(6):
        local.create(name, every(n), user_id="maker", user_role="admin")
    return name


def as_json(value: Any) -> str:
    """The value's JSON text: equal only when keys, order, values and JSON types all are."""
    return json.dumps(value)


@pytest.mark.parametrize("role", ["admin", "user"])
@pytest.mark.parametrize("query", [
    {},
    {"page_size": 2},
    {"page_size": 1, "order_by": "-count"},
    {"filters": {"count": {"gte": 2}}, "page_size": 3},
    {"filters": {"count": 99}},
    {"page": 2, "page_size": 4},
])
def test_a_page_through_a_worker_is_the_in_process_page(
    client: RegistryClient, local: DynamicModelRegistry, model: str, role: str,
    query: dict[str, Any],
) -> None:
    remote = client.list(model, "reader", role, **query).get()
    answer = local.list(model, user_id="reader", user_role=role, **query)
    assert as_json(remote) == as_json(answer)
    assert remote["items"] or query.get("filters") == {"count": 99}
    for item in remote["items"]:
        assert ("alarm" in item) is (role == "admin")
        assert (item["secret"] == f"hidden {item['count']}") is (role == "admin" and
                                                                 item["count"] != 3)


def test_a_cursor_from_a_worker_continues_in_process(
    client: RegistryClient, local: DynamicModelRegistry, model: str
) -> None:
    first = client.list(model, "reader", "user", page_size=2, order_by="count").get()
    remote = client.list(model, "reader", "user", page_size=2, order_by="count",
                         after=first["next_cursor"]).get()
    answer = local.list(model, user_role="user", page_size=2, order_by="count",
                        after=first["next_cursor"])
    assert as_json(remote) == as_json(answer)
    assert [item["count"] for item in remote["items"]] == [2, 3]


def test_a_page_carries_json_types_not_python_ones(
    client: RegistryClient, model: str
) -> None:
    item = client.list(model, "reader", "admin", filters={"count": 1}).get()["items"][0]
    assert item == {
        "id": item["id"], "version": 1, "name": "item 1", "count": 1, "ratio": 1.5,
        "price": "1.50", "active": False, "day": "2026-03-02",
        "at": "2026-03-01T08:00:01.123456Z", "alarm": "07:31:00",
        "token": "00000000-0000-0000-0000-000000000002", "size": "s", "tags": ["a", "1"],
        "extra": {"n": 1, "nested": [1.5, True, None]}, "secret": "hidden 1",
        "created_at": item["created_at"], "updated_at": item["updated_at"],
        "created_by": "maker", "updated_by": "maker",
    }
    assert list(item) == [
        "id", "version", "name", "count", "ratio", "price", "active", "day", "at", "alarm",
        "token", "size", "tags", "extra", "secret", "created_at", "updated_at", "created_by",
        "updated_by",
    ]
    assert isinstance(item["created_at"], str) and item["created_at"].endswith("Z")
