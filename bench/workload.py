"""The benchmarks' workload: one Product model, its rows, and the raw baseline's table.

Shared by `bench.bench_create` (in-process) and `bench.bench_celery` (its producer and
workers); kept apart from `bench.celery_tasks` so that a producer never imports worker code.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from registry.query.indexes import DEFAULT_ORDER_INDEX
from registry.records import RecordTable

__all__ = ["DEFAULT_POSTGRES", "RAW_TABLE", "Product", "rows"]

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class Product(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    description: str = ""
    is_active: bool = True


def _raw_table() -> sa.Table:
    table = RecordTable.for_model("BenchRaw", Product).table
    # Every record table gets the default-order index at registration (query/indexes.py), so
    # every create maintains it: the raw side must too, or it writes a page less per commit.
    sa.Index(
        DEFAULT_ORDER_INDEX.name_on(table.name),
        *(table.c[column] for column in DEFAULT_ORDER_INDEX.columns),
    )
    return table


#: A table of exactly the shape `create` writes `Product` to, under another name, indexes
#: included.
RAW_TABLE: sa.Table = _raw_table()


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"product {i}", "price": 1.0 + i, "description": "a" * 40, "is_active": i % 2 == 0}
        for i in range(count)
    ]
