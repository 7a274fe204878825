"""Properties of listing at scale, on the in-memory registry: a cursor walk with inserts
between its pages sees every record that existed when it began exactly once, and no filter
or order lets a role learn a value it may not read."""

from __future__ import annotations

import datetime
import functools
import uuid
from typing import Any, Literal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry, RegistryError
from registry.query import OPERATORS

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class Entry(BaseModel):
    key: int = Field(json_schema_extra={"x-unique": True})
    price: float | None = Field(default=None, json_schema_extra={"x-index": True})
    size: Literal["s", "m", "l"] = "m"
    code: str | None = None


ORDERS = [None, "price", "-price", "size", "-size", "key", "-key", "created_at"]


@functools.cache
def _registry(name: str) -> DynamicModelRegistry:
    """One registry per role in these tests, reused by every example (making one costs more
    than an example); `_store` replaces its records."""
    registry = DynamicModelRegistry()
    registry.register_model("Entry", Entry, permissions=PERMISSIONS)
    return registry


def _store(registry: DynamicModelRegistry, rows: list[dict[str, Any]]) -> None:
    """Replace every record with `rows`, written straight to the table (what is under test
    is listing them), in creation order one microsecond apart."""
    records = registry.model_info("Entry").records
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with registry.database.write() as conn:
        conn.execute(sa.delete(records.table))
        for index, row in enumerate(rows):
            instance = Entry.model_validate(row)
            at = start + datetime.timedelta(microseconds=index)
            conn.execute(
                records.insert,
                {"id": str(uuid.uuid4()), "version": 1, "created_at": at, "updated_at": at,
                 **records.column_values(instance)},
            )


@PROPERTY_SETTINGS
@given(
    prices=st.lists(st.sampled_from([None, 1.0, 2.0, 2.0, 3.5]), min_size=0, max_size=25),
    order_by=st.sampled_from(ORDERS),
    page_size=st.integers(1, 6),
    inserts=st.lists(
        st.lists(st.sampled_from([None, 0.5, 1.0, 2.0, 9.0]), max_size=3), max_size=12
    ),
)
def test_a_cursor_walk_sees_every_existing_record_once_despite_inserts(
    prices: list[float | None], order_by: str | None, page_size: int,
    inserts: list[list[float | None]],
) -> None:
    registry = _registry("walk")
    _store(registry, [{"key": key, "price": price} for key, price in enumerate(prices)])
    everything = registry.list("Entry", user_role="admin", page_size=100)["items"]
    existing = {item["id"] for item in everything}
    seen: list[str] = []
    page = registry.list("Entry", user_role="admin", order_by=order_by, page_size=page_size)
    batches = iter(inserts)
    key = len(prices)
    while True:
        seen += [item["id"] for item in page["items"]]
        for price in next(batches, []):  # other writers, between this page and the next
            registry.create("Entry", {"key": key, "price": price}, user_role="admin")
            key += 1
        if page["next_cursor"] is None:
            break
        page = registry.list(
            "Entry", user_role="admin", order_by=order_by, page_size=page_size,
            after=page["next_cursor"],
        )
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


# -- no filter leaks a value the role may not read ---------------------------------------

PERMISSIONS = {
    "fields": {
        "price": {"mask": "redact"},  # masked: the role sees "***" (and nulls as nulls)
        "code": {"read_roles": ["admin"]},  # hidden: the role does not see it at all
    }
}
VALUES: dict[str, Any] = {
    "key": st.integers(-2, 30),
    "price": st.sampled_from([0.5, 1.0, 2.0, 7.5]),
    "size": st.sampled_from(["s", "m", "l"]),
    "code": st.sampled_from(["a", "ab", "b%", "c_"]),
    "created_at": st.just("2020-01-01T00:00:00+00:00"),
}


def _operand(field: str, op: str) -> st.SearchStrategy[Any]:
    value = VALUES[field]
    if op == "is_null":
        return st.booleans()
    if op == "in":
        return st.lists(value, max_size=3)
    if op == "startswith":
        return st.sampled_from(["", "a", "b", "s"])
    return value


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3, unique=True))
    found: dict[str, Any] = {}
    for field in chosen:
        op = draw(st.sampled_from([*OPERATORS, "plain"]))
        found[field] = draw(VALUES[field]) if op == "plain" else {op: draw(_operand(field, op))}
    return found


@st.composite
def twin_rows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two stores alike in what the role reads, different in what it may not: masked prices
    differ but are null in the same rows (the mask shows nulls), hidden codes differ freely."""
    count = draw(st.integers(0, 12))
    first, second = [], []
    for key in range(count):
        plain = {"key": key, "size": draw(VALUES["size"])}
        has_price = draw(st.booleans())
        prices = [draw(VALUES["price"]) if has_price else None for _ in range(2)]
        codes = [draw(st.none() | VALUES["code"]) for _ in range(2)]
        first.append({**plain, "price": prices[0], "code": codes[0]})
        second.append({**plain, "price": prices[1], "code": codes[1]})
    return first, second


def _outcome(registry: DynamicModelRegistry, query: dict[str, Any]) -> Any:
    try:
        page = registry.list("Entry", user_role="user", page_size=100, **query)
    except RegistryError as exc:
        return type(exc).__name__
    # As a set: ties in the order are broken by id, which differs between the stores.
    return sorted(item["key"] for item in page["items"]), page["total"]


@PROPERTY_SETTINGS
@given(rows=twin_rows(), where=filters(), order_by=st.sampled_from([*ORDERS, "code", "-code"]))
def test_no_filter_or_order_tells_apart_stores_that_differ_only_in_unreadable_values(
    rows: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    where: dict[str, Any],
    order_by: str | None,
) -> None:
    twins = [_registry("first"), _registry("second")]
    for registry, stored in zip(twins, rows, strict=True):
        _store(registry, stored)
    query = {"filters": where, "order_by": order_by}
    assert _outcome(twins[0], query) == _outcome(twins[1], query)
