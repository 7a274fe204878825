"""How many rows a list matches, at a price that depends on the page, not the table.

    "exact"      COUNT(*) over every matching row.
    "estimated"  PostgreSQL's planner estimate for the query (EXPLAIN), no rows read.
    "none"       no count; `total` is null.
    "auto"       (the default) exact when that is cheap, else the estimate: the matching rows
                 are counted up to `exact_limit`; when they stop short of it the count is
                 exact, otherwise the planner estimate (at least `exact_limit + 1`) is given
                 and marked `total_exact: false`.

The bounded count reads at most `exact_limit + 1` rows (through an index when the filter has
one), so small tables and selective filters get exact totals and large ones cost the same as
small ones. SQLite exposes no planner estimate; there "estimated" and "auto" count exactly.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal

from ..errors import ValidationFailed

__all__ = [
    "CountMode", "CountPlan", "Total", "count_mode", "count_plan", "count_rows", "sql_number",
]


class CountMode(enum.Enum):
    AUTO = "auto"
    EXACT = "exact"
    ESTIMATED = "estimated"
    NONE = "none"


@dataclass(frozen=True)
class Total:
    """A row count; `value` None when none was asked for."""

    value: int | None
    exact: bool


def count_mode(value: Any) -> CountMode:
    """The count mode a caller named (None is "auto"); raises `ValidationFailed`."""
    if value is None:
        return CountMode.AUTO
    try:
        return CountMode(value)
    except (ValueError, TypeError):
        names = ", ".join(repr(mode.value) for mode in CountMode)
        raise ValidationFailed(
            f"count must be one of {names}, not {value!r}.",
            errors=[{"loc": ["count"], "msg": f"must be one of {names}", "type": "argument"}],
        ) from None


def count_rows(
    conn: Connection,
    source: sa.FromClause,
    conditions: list[sa.ColumnElement[bool]],
    mode: CountMode,
    *,
    exact_limit: int,
) -> Total:
    """Count the rows of `source` that meet every condition, as `mode` asks."""
    if mode is CountMode.NONE:
        return Total(None, exact=False)
    postgresql = conn.dialect.name == "postgresql"
    if mode is CountMode.EXACT or not postgresql:
        return Total(_exact(conn, source, conditions), exact=True)
    if mode is CountMode.ESTIMATED:
        return Total(planner_estimate(conn, source, conditions), exact=False)
    bounded = _exact(conn, source, conditions, limit=exact_limit + 1)
    if bounded <= exact_limit:
        return Total(bounded, exact=True)
    return Total(max(planner_estimate(conn, source, conditions), bounded), exact=False)


@dataclass(frozen=True)
class CountPlan:
    """A count taken inside the page's own statement (PostgreSQL), as scalar subqueries:
    one round trip for the page and its total."""

    mode: CountMode
    exact_limit: int
    #: label -> scalar expression (subqueries) to add to the page's statement.
    scalars: dict[str, Any]

    def total(
        self,
        conn: Connection,
        source: sa.FromClause,
        conditions: Callable[[], list[sa.ColumnElement[bool]]],
        values: dict[str, Any],
    ) -> Total:
        """The total from the scalars' values, asking the planner when they do not settle it
        (`conditions` gives the filter's conditions, values bound in, for that question)."""
        if self.mode is CountMode.NONE:
            return Total(None, exact=False)
        if self.mode is CountMode.EXACT:
            return Total(int(values[_COUNTED]), exact=True)
        counted = values.get(_COUNTED)
        if counted is not None and int(counted) <= self.exact_limit:
            return Total(int(counted), exact=True)
        estimate = values.get(_ESTIMATE)
        if estimate is None:
            estimate = planner_estimate(conn, source, conditions())
        return Total(max(int(round(estimate)), int(counted or 0)), exact=False)


_COUNTED = "dmr_counted"
_ESTIMATE = "dmr_estimate"


def count_plan(
    source: sa.Table, conditions: list[sa.ColumnElement[bool]], mode: CountMode, *,
    exact_limit: int,
) -> CountPlan:
    """What to count inside a PostgreSQL page statement for `mode`: the (bounded) count, and
    for an unfiltered table its size estimate from the catalog."""
    scalars: dict[str, Any] = {}
    estimate = None
    if mode in (CountMode.AUTO, CountMode.ESTIMATED) and not conditions:
        estimate = scalars[_ESTIMATE] = _table_size_estimate(source.name)
    if mode in (CountMode.EXACT, CountMode.AUTO):
        rows = sa.select(sa.literal(1)).select_from(source).where(*conditions)
        if mode is CountMode.AUTO:
            # Written, not bound: a bound LIMIT is planned as a tenth of the table, which
            # would keep PostgreSQL from planning the page's statement once (statements.py).
            rows = rows.limit(sql_number(exact_limit + 1))
        counted: Any = sa.select(sa.func.count()).select_from(rows.subquery()).scalar_subquery()
        if estimate is not None:
            # A table the statistics call twice the limit or more is not counted at all
            # (PostgreSQL evaluates a subquery in a CASE branch only when it is taken); one
            # they undercount is still caught by the bounded count.
            counted = sa.case(
                (sa.func.coalesce(estimate, 0) < 2 * (exact_limit + 1), counted), else_=None
            )
        scalars[_COUNTED] = counted
    return CountPlan(mode, exact_limit, scalars)


def sql_number(value: int) -> sa.ColumnElement[int]:
    """A whole number written into the SQL rather than bound, so the planner sees it."""
    return sa.literal_column(str(int(value)), sa.Integer)


@functools.lru_cache(maxsize=1024)
def _table_size_estimate(table_name: str) -> sa.ScalarSelect[Any]:
    """The planner's own estimate of a table's rows: its statistics (reltuples per page)
    scaled to the table's current size in pages, as PostgreSQL plans a scan."""
    estimate = sa.text(
        "SELECT CASE WHEN c.relpages > 0 THEN c.reltuples / c.relpages * "
        "(pg_relation_size(c.oid) / current_setting('block_size')::float8) "
        "ELSE greatest(c.reltuples, 0) END AS estimate "
        "FROM pg_class c WHERE c.oid = to_regclass(:dmr_relation)"
    ).bindparams(dmr_relation=table_name).columns(estimate=sa.Float)
    return sa.select(estimate.subquery().c.estimate).scalar_subquery()


def _exact(
    conn: Connection,
    source: sa.FromClause,
    conditions: list[sa.ColumnElement[bool]],
    limit: int | None = None,
) -> int:
    rows = sa.select(sa.literal(1)).select_from(source).where(*conditions)
    if limit is not None:
        rows = rows.limit(limit)
    counted = sa.select(sa.func.count()).select_from(rows.subquery())
    return int(conn.execute(counted).scalar_one())


def planner_estimate(
    conn: Connection, source: sa.FromClause, conditions: list[sa.ColumnElement[bool]]
) -> int:
    """PostgreSQL's estimate of the matching rows: what EXPLAIN plans for the query, which
    scales the table's statistics (pg_class.reltuples) to its current size."""
    query = sa.select(sa.literal(1)).select_from(source).where(*conditions)
    plan = conn.execute(_Explain(query)).scalar_one()
    return max(0, int(round(plan[0]["Plan"]["Plan Rows"])))


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <query>`, compiled with the query's own parameter handling
    (and cached as the query is: its cache key is the query's)."""

    inherit_cache = True
    _traverse_internals = [("query", InternalTraversal.dp_clauseelement)]

    def __init__(self, query: sa.Select[Any]) -> None:
        self.query = query


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.query, **kw)
