"""Records at scale, as a storage contract: filter operators, keyset cursors, counts and
declared indexes, run on SQLite (unit) and PostgreSQL (integration) through `StorageContract`,
which mixes this class in and provides the `make_registry` fixture."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import operator
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from registry import (
    DuplicateValue,
    DynamicModelRegistry,
    InvalidCursor,
    InvalidFilter,
    InvalidIndex,
    PermissionDenied,
    UnknownField,
    ValidationFailed,
)
from registry.query import OPERATORS
from registry.query.indexes import index_states


class Item(BaseModel):
    model_config = ConfigDict(json_schema_extra={"x-indexes": [["size", "price"]]})

    name: str = Field(json_schema_extra={"x-index": True})
    price: float = Field(json_schema_extra={"x-index": True})
    amount: decimal.Decimal = Field(default=decimal.Decimal("0"), max_digits=8, decimal_places=2)
    day: datetime.date | None = None
    size: Literal["s", "m", "l"] = "m"
    active: bool = True
    note: str | None = None
    tags: list[str] = []
    sku: str | None = Field(default=None, json_schema_extra={"x-unique": True})


def item_rows() -> list[dict[str, Any]]:
    names = ["apple", "Apricot", "banana", "a_b", "a%b", "cherry", "apple pie", "date"]
    rows = []
    for index, name in enumerate(names):
        rows.append(
            {
                "name": name,
                "price": float(index % 5) + 0.5,
                "amount": f"{(index * 37) % 100}.{index}0",
                "day": None if index % 3 == 0 else f"2026-11-{10 + index:02d}",
                "size": ["s", "m", "l"][index % 3],
                "active": index % 2 == 0,
                "note": None if index % 4 == 1 else f"note {index}",
                "tags": [str(index)],
            }
        )
    return rows


#: (filter, which stored rows match) for every operator on every kind of column.
def _value(row: dict[str, Any], field: str) -> Any:
    value = row[field]
    if field == "amount":
        return decimal.Decimal(value)
    if field == "day" and value is not None:
        return datetime.date.fromisoformat(value)
    return value


def _matches(row: dict[str, Any], field: str, op: str, operand: Any) -> bool:
    value = _value(row, field)
    if op == "is_null":
        return (value is None) is operand
    if op == "eq":
        return value == operand
    if op == "ne":
        return value != operand
    if op == "in":
        return value in operand
    if op == "startswith":
        return value is not None and value.startswith(operand)
    if value is None:
        return False
    compare = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
    return bool(compare[op](value, operand))


OPERATOR_CASES: list[tuple[str, str, Any, Any]] = [
    # field, operator, operand sent, operand as Python compares it
    ("price", "eq", 2.5, 2.5),
    ("price", "ne", 2.5, 2.5),
    ("price", "gt", 2.5, 2.5),
    ("price", "gte", 2.5, 2.5),
    ("price", "lt", 2.5, 2.5),
    ("price", "lte", 2.5, 2.5),
    ("price", "in", [0.5, 4.5], [0.5, 4.5]),
    ("amount", "gt", "37.1", decimal.Decimal("37.1")),
    ("amount", "lte", "11.3", decimal.Decimal("11.3")),
    ("amount", "eq", "74.20", decimal.Decimal("74.20")),
    ("day", "gte", "2026-11-14", datetime.date(2026, 11, 14)),
    ("day", "lt", "2026-11-14", datetime.date(2026, 11, 14)),
    ("day", "is_null", True, True),
    ("day", "is_null", False, False),
    ("size", "in", ["s", "l"], ["s", "l"]),
    ("size", "ne", "m", "m"),
    ("size", "gte", "m", "m"),
    ("active", "eq", False, False),
    ("active", "ne", True, True),
    ("name", "startswith", "ap", "ap"),
    ("name", "startswith", "Ap", "Ap"),
    ("name", "startswith", "a_", "a_"),
    ("name", "startswith", "a%", "a%"),
    ("name", "gt", "b", "b"),
    ("name", "in", ["date", "cherry", "nope"], ["date", "cherry", "nope"]),
    ("note", "ne", "note 0", "note 0"),
    ("note", "eq", None, None),
    ("note", "is_null", False, False),
    ("tags", "is_null", False, False),
]


class RecordsAtScale:
    """Mixed into `StorageContract`; uses its `make_registry` fixture."""

    make_registry: Callable[..., DynamicModelRegistry]

    @pytest.fixture
    def items(self, make_registry: Callable[..., DynamicModelRegistry]) -> DynamicModelRegistry:
        registry = make_registry()
        registry.register_model("Item", Item)
        for row in item_rows():
            registry.create("Item", row, user_role="admin")
        return registry

    @staticmethod
    def names(page: dict[str, Any]) -> list[str]:
        return [item["name"] for item in page["items"]]

    # -- filters ------------------------------------------------------------------------

    def test_every_operator_matches_what_python_would(self, items: DynamicModelRegistry) -> None:
        # One database for every case: each test here makes a fresh one, which costs more
        # on PostgreSQL than all the cases together.
        for field, op, operand, python in OPERATOR_CASES:
            expected = sorted(r["name"] for r in item_rows() if _matches(r, field, op, python))
            page = items.list(
                "Item", user_role="admin", filters={field: {op: operand}}, order_by="name",
                page_size=100,
            )
            case = f"{field} {op} {operand!r}"
            assert sorted(self.names(page)) == expected, case
            assert page["total"] == len(expected) and page["total_exact"] is True, case
        assert {op for _, op, _, _ in OPERATOR_CASES} == set(OPERATORS)

    def test_operators_combine_with_and(self, items: DynamicModelRegistry) -> None:
        page = items.list(
            "Item", user_role="user",
            filters={"price": {"gte": 1.5, "lt": 4.5}, "active": True, "name": {"ne": "date"}},
            order_by="-price",
        )
        expected = [
            r for r in item_rows()
            if 1.5 <= r["price"] < 4.5 and r["active"] and r["name"] != "date"
        ]
        assert len(page["items"]) == len(expected) >= 1
        prices = [item["price"] for item in page["items"]]
        assert prices == sorted(prices, reverse=True)

    def test_bad_filters_give_typed_errors_naming_the_field(
        self, items: DynamicModelRegistry
    ) -> None:
        bad: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"price": {"between": [1, 2]}}, InvalidFilter, "unknown operator 'between'"),
            ({"price": {"gt": "cheap"}}, InvalidFilter, "does not fit the field's type"),
            ({"day": {"lt": "yesterday"}}, InvalidFilter, "does not fit"),
            ({"price": {"in": list(range(100_000))}}, InvalidFilter, "100000 values"),
            ({"price": {"in": 3}}, InvalidFilter, "must be a list"),
            ({"price": {"in": [1.0, None]}}, InvalidFilter, "use is_null"),
            ({"price": {"gt": None}}, InvalidFilter, "use is_null"),
            ({"active": {"gt": False}}, InvalidFilter, "no order"),
            ({"price": {"startswith": "1"}}, InvalidFilter, "not text"),
            ({"name": {"startswith": 5}}, InvalidFilter, "must be text"),
            ({"note": {"is_null": "yes"}}, InvalidFilter, "true or false"),
            ({"tags": {"eq": ["1"]}}, InvalidFilter, "holds JSON"),
            ({"price": {}}, InvalidFilter, "empty"),
            ({"nope": {"gt": 1}}, UnknownField, "no field 'nope'"),
            ({"size": "xl"}, InvalidFilter, "does not fit"),
        ]
        for filters, error, text in bad:
            with pytest.raises(error, match=text) as caught:
                items.list("Item", user_role="admin", filters=filters)
            field = next(iter(filters))
            assert field in str(caught.value)
            if error is InvalidFilter:
                assert caught.value.details["field"] == field
        with pytest.raises(ValidationFailed, match="filters.? must be an object"):
            items.list("Item", user_role="admin", filters=["price"])  # type: ignore[arg-type]

    def test_filters_cannot_probe_masked_or_hidden_values(
        self, items: DynamicModelRegistry
    ) -> None:
        items.set_permissions(
            "Item",
            {"fields": {"price": {"mask": "redact"}, "note": {"read_roles": ["admin"]}}},
        )
        for op, operand in [("eq", 0.5), ("gt", 1), ("in", [0.5]), ("ne", 1), ("lte", 9)]:
            with pytest.raises(PermissionDenied, match="price"):
                items.list("Item", user_role="user", filters={"price": {op: operand}})
        with pytest.raises(PermissionDenied, match="price"):
            items.list("Item", user_role="user", filters={"price": 0.5})
        with pytest.raises(PermissionDenied, match="price"):
            items.list("Item", user_role="user", filters={"price": {"is_null": False, "gt": 1}})
        # A masked value shows nulls as nulls, so is_null reveals nothing more than a read.
        page = items.list("Item", user_role="user", filters={"price": {"is_null": False}})
        assert page["total"] == len(item_rows())
        for op, operand in [("is_null", True), ("startswith", "n"), ("eq", "note 0")]:
            with pytest.raises(PermissionDenied, match="note"):
                items.list("Item", user_role="user", filters={"note": {op: operand}})
        with pytest.raises(PermissionDenied):
            items.list("Item", user_role="user", order_by="price")
        admin = items.list("Item", user_role="admin", filters={"price": {"gt": 4}})
        assert admin["total"] == sum(1 for r in item_rows() if r["price"] > 4)

    # -- cursors ------------------------------------------------------------------------

    def test_a_cursor_walk_returns_every_record_once_in_order(
        self, items: DynamicModelRegistry
    ) -> None:
        for order_by in [None, "price", "-price", "name", "-day", "day", "id", "-amount"]:
            self.walk_in_order(items, order_by)

    def walk_in_order(self, items: DynamicModelRegistry, order_by: str | None) -> None:
        everything = items.list("Item", user_role="admin", order_by=order_by, page_size=100)
        walked: list[str] = []
        page = items.list("Item", user_role="admin", order_by=order_by, page_size=3)
        while True:
            walked += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            page = items.list(
                "Item", user_role="admin", order_by=order_by, page_size=3,
                after=page["next_cursor"],
            )
            assert page["page"] is None
        assert walked == [item["id"] for item in everything["items"]], order_by
        assert everything["next_cursor"] is None

    def test_a_pages_records_are_the_records_read_one_by_one(
        self, items: DynamicModelRegistry
    ) -> None:
        # A page converts its rows in one pass, a read one row at a time: the JSON must be
        # the same, keys, order and types included. Pages by "day" past a cursor also read
        # the nulls as a range of their own (rows of a second statement).
        for role in ("admin", "user"):
            page = items.list("Item", user_role=role, order_by="day", page_size=3)
            seen = 0
            while True:
                for item in page["items"]:
                    alone = items.read("Item", item["id"], user_role=role)
                    assert json.dumps(item) == json.dumps(alone), item["name"]
                seen += len(page["items"])
                if page["next_cursor"] is None:
                    break
                page = items.list("Item", user_role=role, order_by="day", page_size=3,
                                  after=page["next_cursor"])
            assert seen == len(item_rows())

    def test_an_equality_filter_on_an_indexed_field_walks_its_matches_in_order(
        self, items: DynamicModelRegistry
    ) -> None:
        # On PostgreSQL such a page is read from the field's index in order rather than by
        # keys first (statements.reads_in_order): the same records, in the same order.
        for index in range(5):
            items.create("Item", {"name": f"more {index}", "price": 2.5}, user_role="admin")
        everything = items.list("Item", user_role="admin", page_size=100)["items"]
        for order_by, direction in ((None, 1), ("created_at", 1), ("-created_at", -1)):
            matching = [item for item in everything if item["price"] == 2.5][::direction]
            walked: list[dict[str, Any]] = []
            page = items.list("Item", user_role="admin", filters={"price": 2.5},
                              order_by=order_by, page_size=2)
            assert page["total"] == len(matching) and page["total_exact"] is True
            while True:
                walked += page["items"]
                if page["next_cursor"] is None:
                    break
                page = items.list("Item", user_role="admin", filters={"price": 2.5},
                                  order_by=order_by, page_size=2, after=page["next_cursor"])
            assert walked == matching, order_by

    def test_nulls_sort_after_values_ascending_and_before_them_descending(
        self, items: DynamicModelRegistry
    ) -> None:
        ascending = [
            i["day"] for i in items.list("Item", user_role="admin", order_by="day")["items"]
        ]
        descending = [
            i["day"] for i in items.list("Item", user_role="admin", order_by="-day")["items"]
        ]
        values = sorted(d for d in ascending if d is not None)
        nulls = [None] * (len(ascending) - len(values))
        assert ascending == values + nulls
        assert descending == nulls + values[::-1]

    def test_inserts_during_a_walk_neither_skip_nor_repeat_existing_records(
        self, items: DynamicModelRegistry
    ) -> None:
        before = {i["id"] for i in items.list("Item", user_role="admin", page_size=100)["items"]}
        seen: list[str] = []
        page = items.list("Item", user_role="admin", order_by="price", page_size=2)
        inserted = 0
        while True:
            seen += [item["id"] for item in page["items"]]
            for price in (0.0, 2.5, 99.0):  # before, amid and after the walk's position
                items.create("Item", {"name": f"new{inserted}", "price": price}, user_role="admin")
                inserted += 1
            if page["next_cursor"] is None:
                break
            page = items.list(
                "Item", user_role="admin", order_by="price", page_size=2,
                after=page["next_cursor"],
            )
        assert len(seen) == len(set(seen))
        assert before <= set(seen)

    def test_a_walk_while_another_writer_inserts_sees_every_existing_record_once(
        self, items: DynamicModelRegistry, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        writer = make_registry()  # another process's registry, on the same database
        before = {i["id"] for i in items.list("Item", user_role="admin", page_size=100)["items"]}
        stop = threading.Event()
        inserted: list[str] = []

        def insert() -> None:
            while not stop.is_set() and len(inserted) < 400:
                price = float(len(inserted) % 7)
                made = writer.create(
                    "Item", {"name": f"w{len(inserted)}", "price": price}, user_role="admin"
                )
                inserted.append(made["id"])

        thread = threading.Thread(target=insert)
        thread.start()
        try:
            seen: list[str] = []
            page = items.list("Item", user_role="admin", order_by="-price", page_size=2)
            while True:
                seen += [item["id"] for item in page["items"]]
                if page["next_cursor"] is None or len(seen) > 1000:
                    break
                time.sleep(0.005)  # let the writer in between pages
                page = items.list(
                    "Item", user_role="admin", order_by="-price", page_size=2,
                    after=page["next_cursor"],
                )
        finally:
            stop.set()
            thread.join()
        assert inserted, "the writer wrote nothing during the walk"
        assert len(seen) == len(set(seen))
        assert before <= set(seen)

    def test_bad_cursors_and_paging_give_typed_errors(self, items: DynamicModelRegistry) -> None:
        page = items.list("Item", user_role="admin", order_by="price", page_size=2)
        cursor = page["next_cursor"]
        assert isinstance(cursor, str)
        body, _, mac = cursor.partition(".")
        flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
        for tampered in [flipped + "." + mac, body + "." + mac[::-1], "garbage", ""]:
            with pytest.raises(InvalidCursor):
                items.list("Item", user_role="admin", order_by="price", after=tampered)
        for malformed in ["x" * 5000, 12]:  # the operation's own argument checks
            with pytest.raises(ValidationFailed, match="after"):
                items.list("Item", user_role="admin", order_by="price", after=malformed)  # type: ignore[arg-type]
        with pytest.raises(InvalidCursor, match="another query"):
            items.list("Item", user_role="admin", order_by="-price", after=cursor)
        with pytest.raises(InvalidCursor, match="another query"):
            items.list(
                "Item", user_role="admin", order_by="price", after=cursor,
                filters={"active": True},
            )
        with pytest.raises(ValidationFailed, match="either page or after"):
            items.list("Item", user_role="admin", order_by="price", after=cursor, page=2)

    def test_offset_pages_stop_at_the_maximum_offset_and_name_cursors(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        from registry import Settings

        registry = make_registry(settings=Settings().with_overrides(models={"max_offset": 4}))
        registry.register_model("Item", Item)
        for row in item_rows():
            registry.create("Item", row, user_role="admin")
        assert len(registry.list("Item", user_role="user", page=3, page_size=2)["items"]) == 2
        with pytest.raises(ValidationFailed, match="after=") as caught:
            registry.list("Item", user_role="user", page=4, page_size=2)
        assert "cursor" in str(caught.value)

    # -- counts -------------------------------------------------------------------------

    def test_count_modes(self, items: DynamicModelRegistry) -> None:
        everything = len(item_rows())
        default = items.list("Item", user_role="user", page_size=2)
        assert default["total"] == everything and default["total_exact"] is True
        exact = items.list("Item", user_role="user", count="exact", filters={"active": True})
        assert exact["total"] == sum(1 for r in item_rows() if r["active"])
        assert exact["total_exact"] is True
        none = items.list("Item", user_role="user", count="none")
        assert none["total"] is None and none["total_exact"] is False
        assert len(none["items"]) == everything
        estimated = items.list("Item", user_role="user", count="estimated")
        assert isinstance(estimated["total"], int) and estimated["total"] >= 0
        with pytest.raises(ValidationFailed, match="count must be one of"):
            items.list("Item", user_role="user", count="roughly")

    def test_counts_past_the_exact_limit_are_estimates_where_the_planner_gives_one(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        from registry import Settings

        settings = Settings().with_overrides(models={"count_exact_limit": 3})
        registry = make_registry(settings=settings)
        registry.register_model("Item", Item)
        for row in item_rows():
            registry.create("Item", row, user_role="admin")
        small = registry.list("Item", user_role="user", filters={"name": "date"})
        assert small["total"] == 1 and small["total_exact"] is True
        large = registry.list("Item", user_role="user")
        if registry.database.is_postgresql:
            assert large["total_exact"] is False and large["total"] >= 4
        else:  # SQLite has no planner estimate: it counts
            assert large["total_exact"] is True and large["total"] == len(item_rows())

    # -- indexes ------------------------------------------------------------------------

    def test_declared_indexes_are_built_listed_and_dropped(
        self, items: DynamicModelRegistry
    ) -> None:
        described = next(m for m in items.list_models() if m["name"] == "Item")["indexes"]
        declared = {(tuple(ix["fields"]), ix["unique"]) for ix in described}
        assert declared == {
            (("name",), False), (("price",), False), (("sku",), True), (("size", "price"), False)
        }
        table = items.model_info("Item").records.table.name
        with items.database.read() as conn:
            built = index_states(conn, table)
        assert {ix["name"] for ix in described} <= set(built) and all(built.values())
        # A single field's index is keyed by the field then the default order, a composite
        # one carries created_at, so a filtered page in the default order finds its keys in
        # the index; unique ones hold just their fields.
        with items.database.read() as conn:
            definitions = _index_definitions(conn, table)
        price = next(ix["name"] for ix in described if ix["fields"] == ["price"])
        sku = next(ix["name"] for ix in described if ix["fields"] == ["sku"])
        pair = next(ix["name"] for ix in described if ix["fields"] == ["size", "price"])
        assert _index_keys(definitions[price]) == "price, created_at, id"
        assert "created_at" not in definitions[sku] and _index_keys(definitions[sku]) == "sku"
        if items.database.is_postgresql:
            assert "INCLUDE" not in definitions[price]
            assert _index_keys(definitions[pair]) == "size, price"
            assert "INCLUDE (created_at)" in definitions[pair]
        else:  # no INCLUDE: the carried column is a trailing key
            assert _index_keys(definitions[pair]) == "size, price, created_at"

        class Fewer(BaseModel):
            name: str
            price: float = Field(json_schema_extra={"x-index": True})
            amount: decimal.Decimal = Field(
                default=decimal.Decimal("0"), max_digits=8, decimal_places=2
            )
            day: datetime.date | None = Field(default=None, json_schema_extra={"x-index": True})
            size: Literal["s", "m", "l"] = "m"
            active: bool = True
            note: str | None = None
            tags: list[str] = []
            sku: str | None = None

        items.register_model("Item", Fewer)
        described = next(m for m in items.list_models() if m["name"] == "Item")["indexes"]
        assert {tuple(ix["fields"]) for ix in described} == {("price",), ("day",)}
        with items.database.read() as conn:
            built = index_states(conn, table)
        assert {ix["name"] for ix in described} <= set(built)
        assert len(built) == len(described) + 1  # and the default order's (created_at, id)
        assert len(items.list("Item", user_role="user", page_size=100)["items"]) == 8

    def test_an_index_on_a_json_field_or_an_unknown_field_is_refused(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()

        class Tagged(BaseModel):
            tags: list[str] = Field(default=[], json_schema_extra={"x-index": True})

        with pytest.raises(InvalidIndex, match="tags"):
            registry.register_model("Tagged", Tagged)

        class Composite(BaseModel):
            model_config = ConfigDict(json_schema_extra={"x-indexes": [["a", "missing"]]})
            a: int

        with pytest.raises(InvalidIndex, match="missing"):
            registry.register_model("Composite", Composite)
        schema = {
            "type": "object",
            "properties": {"a": {"type": "integer", "x-unique": "yes"}},
        }
        with pytest.raises(InvalidIndex, match="x-unique"):
            registry.register_schema("Odd", schema)
        assert registry.list_models() == []

    def test_a_unique_field_refuses_a_repeated_value_with_duplicate_value(
        self, items: DynamicModelRegistry
    ) -> None:
        first = items.create("Item", {"name": "one", "price": 1, "sku": "A-1"}, user_role="admin")
        with pytest.raises(DuplicateValue, match="'sku'") as caught:
            items.create("Item", {"name": "two", "price": 2, "sku": "A-1"}, user_role="admin")
        assert caught.value.details["fields"] == ["sku"]
        assert "A-1" not in str(caught.value)  # values may be secrets; the field is named
        second = items.create("Item", {"name": "two", "price": 2, "sku": "A-2"}, user_role="admin")
        with pytest.raises(DuplicateValue, match="'sku'"):
            items.update("Item", second["id"], {"sku": "A-1"}, user_role="admin")
        assert items.read("Item", second["id"], user_role="admin")["sku"] == "A-2"
        items.update("Item", first["id"], {"sku": None}, user_role="admin")
        items.update("Item", second["id"], {"sku": "A-1"}, user_role="admin")
        # nulls never clash
        items.create("Item", {"name": "three", "price": 3}, user_role="admin")

    def test_a_unique_index_over_repeated_stored_values_is_refused(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()

        class Plain(BaseModel):
            code: str

        class Unique(BaseModel):
            code: str = Field(json_schema_extra={"x-unique": True})

        registry.register_model("Coded", Plain)
        for _ in range(2):
            registry.create("Coded", {"code": "same"}, user_role="admin")
        with pytest.raises(DuplicateValue, match="'code'"):
            registry.register_model("Coded", Unique)
        assert registry.model_info("Coded").version == 1
        assert len(registry.list("Coded", user_role="user")["items"]) == 2

    def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(
        self, items: DynamicModelRegistry
    ) -> None:
        entry = items.model_info("Item")
        table = entry.records.table.name
        with items.database.read() as conn:
            name = next(n for n in index_states(conn, table) if "name" in n)
        if items.database.is_postgresql:
            with items.database.write() as conn:  # what a build killed half-way leaves
                conn.execute(
                    sa.text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                            "to_regclass(:name)"),
                    {"name": name},
                )
        else:
            with items.database.write() as conn:
                conn.execute(sa.text(f'DROP INDEX "{name}"'))
        with items.database.read() as conn:
            assert index_states(conn, table).get(name) is not True
        items.register_model("Item", Item)  # unchanged: the indexes are still checked
        with items.database.read() as conn:
            assert index_states(conn, table).get(name) is True


    def test_an_index_built_with_an_earlier_definition_is_replaced(
        self, items: DynamicModelRegistry
    ) -> None:
        table = items.model_info("Item").records.table.name
        with items.database.read() as conn:
            current = next(n for n in index_states(conn, table) if n.startswith("dmr_ix_price_"))
        # What earlier versions built for `"x-index"` on price: (price, id), created_at carried.
        digest = hashlib.sha256(f"{table}|price,id|created_at".encode()).hexdigest()[:12]
        earlier = f"dmr_ix_price_{digest}"
        keys = "price, id" if items.database.is_postgresql else "price, id, created_at"
        include = " INCLUDE (created_at)" if items.database.is_postgresql else ""
        with items.database.write() as conn:
            conn.execute(sa.text(f'DROP INDEX "{current}"'))
            conn.execute(sa.text(f'CREATE INDEX "{earlier}" ON "{table}" ({keys}){include}'))
        items.register_model("Item", Item)  # unchanged: the indexes are still checked
        with items.database.read() as conn:
            built = index_states(conn, table)
            definitions = _index_definitions(conn, table)
        assert earlier not in built and built.get(current) is True
        assert _index_keys(definitions[current]) == "price, created_at, id"
        described = next(m for m in items.list_models() if m["name"] == "Item")["indexes"]
        assert {"name": current, "fields": ["price"], "unique": False} in described
        assert len(items.list("Item", user_role="user", filters={"price": 0.5})["items"]) == 2


def _index_keys(definition: str) -> str:
    """The key columns of a CREATE INDEX statement, as written between its parentheses
    after the table (quotes dropped)."""
    keys = definition.split(" ON ", 1)[1].split("(", 1)[1].split(")", 1)[0]
    return keys.replace('"', "")


def _index_definitions(conn: Connection, table: str) -> dict[str, str]:
    """Index name -> its CREATE INDEX statement, as the database keeps it."""
    if conn.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
    return {str(name): str(sql) for name, sql in conn.execute(sa.text(query), {"table": table})}
