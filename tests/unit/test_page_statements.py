"""Which PostgreSQL page statements select their keys first, and which read an index in order
(registry/query/statements.py), compiled for PostgreSQL without a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from registry import DynamicModelRegistry
from registry.catalog import ModelEntry
from registry.query import CountMode, Visibility, ordering, parse_filters, record_fields
from registry.query.statements import page_statements
from tests.scale_contract import Item


@pytest.fixture
def entry() -> Iterator[ModelEntry]:
    registry = DynamicModelRegistry("sqlite://")
    registry.register_model("Item", Item)  # x-index on name and price; x-indexes (size, price)
    yield registry.model_info("Item")
    registry.close()


def page_sql(
    entry: ModelEntry, filters: dict[str, Any], order_by: str | None = None,
    indexes: tuple[tuple[str, ...], ...] | None = None,
) -> str:
    fields = record_fields(entry.records, "postgresql")

    def plain(_: str) -> Visibility:
        return Visibility.PLAIN

    conditions = parse_filters(filters, fields, plain, model="Item", role="r", max_values=10)
    order = ordering(order_by, fields, plain, model="Item", role="r")
    statements = page_statements(
        entry.records.table, conditions, order, None, page_size=50, offset=False,
        count=CountMode.AUTO, exact_limit=10_000,
        indexes=entry.index_columns if indexes is None else indexes,
    )
    return str(statements.first.compile(dialect=postgresql.dialect()))


@pytest.mark.parametrize(("filters", "order_by"), [
    ({"price": 2.5}, None),
    ({"price": 2.5}, "-created_at"),
    ({"name": "apple"}, "created_at"),
])
def test_an_equality_on_a_fields_index_reads_it_in_order(
    entry: ModelEntry, filters: dict[str, Any], order_by: str | None
) -> None:
    sql = page_sql(entry, filters, order_by)
    assert "dmr_keys" not in sql
    assert "ORDER BY" in sql and "LIMIT 51" in sql


@pytest.mark.parametrize(("filters", "order_by"), [
    ({"price": {"gte": 1.0}}, None),  # a range: the index is in price order, not the page's
    ({"price": 2.5}, "name"),  # ordered by another field
    ({"size": "m"}, None),  # a composite index carries created_at unordered
    ({"price": 2.5, "name": "apple"}, None),  # no index leads with both
    ({"price": {"in": [2.5]}}, None),
])
def test_other_filtered_pages_select_their_keys_first(
    entry: ModelEntry, filters: dict[str, Any], order_by: str | None
) -> None:
    assert "dmr_keys" in page_sql(entry, filters, order_by)


def test_without_the_index_an_equality_page_selects_its_keys_first(entry: ModelEntry) -> None:
    assert "dmr_keys" in page_sql(entry, {"price": 2.5}, indexes=())
