"""A page's statements on PostgreSQL, built once per shape and run again with new values.

Building a SQLAlchemy statement (subqueries, a lateral join, their column collections) costs
more than PostgreSQL takes to run it. So the statements of a page are built once for each
shape of request (the table; the filters' fields and operators; the order; where the page
starts: the beginning, a value or the nulls; offset or not; the count; the guard) and kept.
Every value (filter operands, the cursor's position, the limit, the offset) is a bound
parameter given at execution. A kept statement also keeps its SQLAlchemy cache key, so its
compiled SQL is found without walking the statement again. Each table keeps its own shapes
(at most `MAX_SHAPES_PER_TABLE`).

The first range's row limit (the page size plus one) and the count's bound are written into
the SQL as numbers, not bound: psycopg prepares a statement it runs often, and PostgreSQL
then plans it once (a generic plan) only if that plan looks no dearer than planning it for
each call's values. A bound LIMIT is planned as a tenth of the table, so it never did, and
every page was planned again: about 0.3 ms, more than running it. So the page size is part
of the shape.

With filters, a page first finds the keys of its rows (`id` in the page's order, through
whichever index the filter has) and then reads just those rows by primary key. A declared
index holds `created_at`, the default order (a single field's as a key after the field, a
composite one's carried; see indexes.py), so a filtered page in the default order takes its
keys from the index alone (for an equality, its first entries in order) and reads the table
for the page's rows only, not for every row that matches. An equality filter whose index
holds the page's order needs no keys first: its page is that index read in order
(`reads_in_order`).

The statements run on the driver's connection under the caller's (see `_executor`): for a
page, SQLAlchemy's execution and result rows cost more than PostgreSQL's work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..database import driver_of
from ..driver_statement import DriverStatement
from .counts import CountMode, CountPlan, count_plan, sql_number
from .cursors import KeysetOrder, PageRow, segments
from .filters import Condition

__all__ = ["LIMIT", "OFFSET", "PageStatements", "filter_params", "page_statements"]

#: Bound parameters: rows to fetch in a range that follows the first (the first's limit, one
#: more than the page to learn whether another follows, is written into its SQL), and rows
#: to skip.
LIMIT, OFFSET = "dmr_limit", "dmr_offset"
#: Shapes kept per table; past it the table's shapes are built again as they come.
MAX_SHAPES_PER_TABLE = 256
_ORDER_KEY = "dmr_order_key"


def filter_params(conditions: Sequence[Condition]) -> dict[str, Any]:
    """The values of the conditions, named as the kept statements bind them."""
    params: dict[str, Any] = {}
    for index, condition in enumerate(conditions):
        params.update(condition.params(_name(index)))
    return params


def _name(index: int) -> str:
    return f"dmr_f{index}"


@dataclass(frozen=True)
class PageStatements:
    """The statements of one shape of page: the first range, with the count's and the
    guard's scalars beside it, and the ranges that may follow it (see cursors.segments)."""

    first: sa.Select[Any]
    rest: tuple[sa.Select[Any], ...]
    count: CountPlan
    #: Labels of the scalars the first statement returns in every row.
    scalars: tuple[str, ...]
    #: The statements compiled once for the driver, by dialect name (see `_executor`).
    _driven: dict[str, list[DriverStatement]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def run(
        self, conn: Connection, params: Mapping[str, Any], page_size: int
    ) -> tuple[list[PageRow], bool, dict[str, Any]]:
        """The page's rows (every range's rows have the first's columns), whether more
        follow, and the scalars' values."""
        wanted = page_size + 1
        execute = self._executor(conn)
        rows = execute(0, params)
        values: dict[str, Any] = {}
        if self.scalars:
            # The scalars ride on every row; for an empty page the left join brings one row
            # of them alone, with no id.
            first = rows[0]._mapping
            values = {name: first[name] for name in self.scalars}
            if first["id"] is None:
                rows = []
        for index in range(1, len(self.rest) + 1):
            if len(rows) >= wanted:
                break
            rows.extend(execute(index, {**params, LIMIT: wanted - len(rows)}))
        return rows[:page_size], len(rows) > page_size, values

    def _executor(self, conn: Connection) -> Callable[[int, Mapping[str, Any]], list[PageRow]]:
        """Runs statement `index` (0 the first range, then `rest`) on `conn`: on the driver's
        connection when every statement compiles to SQL that values do not change, else
        through SQLAlchemy (an `in` filter's list is written into the SQL per call)."""
        driven = self._driven.get(conn.dialect.name)
        if driven is None:
            driven = [DriverStatement(s, conn.dialect) for s in (self.first, *self.rest)]
            self._driven[conn.dialect.name] = driven
        if not all(statement.complete for statement in driven):
            return lambda index, params: list[PageRow](
                conn.execute(driven[index].statement, params).all()
            )

        def on_driver(index: int, params: Mapping[str, Any]) -> list[PageRow]:
            # SQLAlchemy's execution and its result rows cost about 0.1 ms a page, more
            # than PostgreSQL takes to read one.
            with driver_of(conn) as driver:
                return list(driven[index].rows(driver, params))

        return on_driver


#: Where a table keeps its shapes: in its own `info`, so they go when the table goes (a
#: re-registered model's old table included). A weak map keyed by table would keep every
#: table alive, since its statements refer to the table's columns.
_INFO_KEY = "dmr_page_statements"
_lock = threading.Lock()


def page_statements(
    table: sa.Table,
    conditions: Sequence[Condition],
    order: KeysetOrder,
    after: str | None,
    *,
    page_size: int,
    offset: bool,
    count: CountMode,
    exact_limit: int,
    guard: sa.ScalarSelect[Any] | None = None,
    guard_label: str = "dmr_guard",
    indexes: Collection[tuple[str, ...]] = (),
) -> PageStatements:
    """The kept statements for this shape of page, built on first use. `after` is the kind
    of position the page starts from (cursors.after_kind); `guard` a scalar read beside the
    page (say, the registry version); `indexes` the column lists of the table's indexes (see
    `reads_in_order`)."""
    keys_first = bool(conditions) and not reads_in_order(conditions, order, indexes)
    shape = (
        tuple(condition.shape for condition in conditions), order.spelling, after, page_size,
        offset, count, exact_limit, guard, guard_label, keys_first,
    )
    with _lock:
        owner, kept = table.info.get(_INFO_KEY, (None, None))
        if owner is not table or kept is None:  # none yet, or an `info` copied from another table
            kept = {}
            table.info[_INFO_KEY] = (table, kept)
        statements: PageStatements | None = kept.get(shape)
    if statements is None:
        statements = _build(
            table, conditions, order, after, page_size=page_size, offset=offset, count=count,
            exact_limit=exact_limit, guard=guard, guard_label=guard_label, keys_first=keys_first,
        )
        with _lock:
            if len(kept) >= MAX_SHAPES_PER_TABLE:
                kept.clear()
            kept[shape] = statements
    return statements


def _build(
    table: sa.Table,
    conditions: Sequence[Condition],
    order: KeysetOrder,
    after: str | None,
    *,
    page_size: int,
    offset: bool,
    count: CountMode,
    exact_limit: int,
    guard: sa.ScalarSelect[Any] | None,
    guard_label: str,
    keys_first: bool,
) -> PageStatements:
    clauses = [
        condition.clause("postgresql", _name(index)) for index, condition in enumerate(conditions)
    ]
    first, *rest = segments(sa.select(table).where(*clauses), order, after)
    first = first.limit(sql_number(page_size + 1))
    if offset:
        first = first.offset(sa.bindparam(OFFSET, type_=sa.Integer))
    plan = count_plan(table, clauses, count, exact_limit=exact_limit)
    scalars = dict(plan.scalars)
    if guard is not None:
        scalars[guard_label] = guard
    first = _first_range(table, first, order, scalars, keys_first=keys_first)
    columns = _columns_like(first, table, order, scalars)
    rest = [
        statement.with_only_columns(*columns).limit(sa.bindparam(LIMIT, type_=sa.Integer))
        for statement in rest
    ]
    return PageStatements(first, tuple(rest), plan, tuple(scalars))


def reads_in_order(
    conditions: Sequence[Condition], order: KeysetOrder, indexes: Collection[tuple[str, ...]]
) -> bool:
    """Whether an index holds the page's rows in the page's order: every condition is an
    equality and an index leads with those fields, then the order's column and `id` (a
    single field's index, `(field, created_at, id)`, in the default order). Such a page is
    the index read in order from its first matching entry, each entry's row read as it comes;
    selecting the keys first would only add a primary-key lookup per row."""
    if not conditions or any(condition.operator != "eq" for condition in conditions):
        return False
    if not isinstance(order.column, sa.Column) or order.column.name != order.key:
        return False  # ordered by an expression of the field (SQLite's decimals), no index's
    fields = {condition.field.name for condition in conditions}
    wanted = (order.key, "id")
    return any(
        set(columns[: len(fields)]) == fields
        and columns[len(fields) : len(fields) + 2] == wanted
        for columns in indexes
    )


def _columns_like(
    first: sa.Select[Any], table: sa.Table, order: KeysetOrder, scalars: Mapping[str, Any]
) -> list[sa.ColumnElement[Any]]:
    """The first range's columns, in its order, for a range that follows it (nulls for the
    scalars), so that every row of a page has the same columns."""
    columns: list[sa.ColumnElement[Any]] = []
    for name in first.selected_columns.keys():
        if name in scalars:
            columns.append(sa.null().label(name))
        elif name == _ORDER_KEY:
            columns.append(order.column.label(_ORDER_KEY))
        else:
            columns.append(table.c[name])
    return columns


def _first_range(
    table: sa.Table,
    statement: sa.Select[Any],
    order: KeysetOrder,
    scalars: Mapping[str, Any],
    *,
    keys_first: bool,
) -> sa.Select[Any]:
    """The first range, its rows read by key when `keys_first`, with `scalars` beside it:
    `SELECT scalars..., page.* FROM (SELECT scalars) LEFT JOIN LATERAL (page) ON true`, so
    an empty page still brings them back."""
    if not keys_first and not scalars:
        return statement
    # The order column comes back as a column of its own only when it is not one of the
    # table's (each row would otherwise carry, and convert, the same value twice).
    own = table.c.get(order.key) is order.column
    extra = [] if own else [order.column.label(_ORDER_KEY)]
    if keys_first:
        keys = statement.with_only_columns(table.c.id).subquery("dmr_keys")
        rows = sa.select(table, *extra).join(keys, table.c.id == keys.c.id)
    else:
        rows = statement.add_columns(*extra)
    sort_key = order.key if own else _ORDER_KEY
    if not scalars:
        alone = rows.subquery("dmr_page")
        return sa.select(alone).order_by(*_outer_order(alone.c[sort_key], alone.c.id, order))
    base = sa.select(*(scalar.label(name) for name, scalar in scalars.items())).subquery()
    page = rows.subquery("dmr_page").lateral()
    return (
        sa.select(base, page)
        .select_from(base.outerjoin(page, sa.true()))
        .order_by(*_outer_order(page.c[sort_key], page.c.id, order))
    )


def _outer_order(
    key: sa.ColumnElement[Any], ident: sa.ColumnElement[Any], order: KeysetOrder
) -> list[sa.ColumnElement[Any]]:
    if order.descending:
        return [key.desc().nulls_first(), ident.desc()]
    return [key.asc().nulls_last(), ident.asc()]
