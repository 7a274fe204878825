"""One page of a list: filters, keyset or offset paging, and a count, on any table.

The record service calls `list_page` with a model's record table; CQRS read models call it
with theirs (through `table_fields`). The answer:

    {"items": [...], "page": 1, "page_size": 50, "total": 1234, "total_exact": true,
     "next_cursor": "..." or null}

`after=<next_cursor>` continues from the end of the page that returned it; `page` (offset
paging) stays for callers that had it, up to `max_offset` rows deep, past which the error
names cursors. A cursor continues only the listing (model, filters, order) that made it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationFailed
from .counts import count_mode, count_rows
from .cursors import CursorCodec, PageRow, after_kind, after_params, fetch_page, query_fingerprint
from .fields import ordering
from .filters import FilterField, Visibility, parse_filters
from .statements import OFFSET, filter_params, page_statements

if TYPE_CHECKING:
    from ..settings import ModelsSettings

__all__ = ["ListLimits", "ListRequest", "Page", "list_page"]


@dataclass(frozen=True)
class ListLimits:
    """The settings a list obeys (`models.*`)."""

    default_page_size: int
    max_page_size: int
    max_offset: int
    max_filter_values: int
    count_exact_limit: int

    @classmethod
    def from_settings(cls, settings: ModelsSettings) -> ListLimits:
        """The limits `[models]` sets, for records and CQRS lists alike."""
        return cls(
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            max_offset=settings.max_offset,
            max_filter_values=settings.max_filter_values,
            count_exact_limit=settings.count_exact_limit,
        )


@dataclass(frozen=True)
class ListRequest:
    """What the caller asked for, as it arrived (checked by `list_page`)."""

    filters: Any = None
    order_by: Any = None
    page: Any = 1
    page_size: Any = None
    after: Any = None
    count: Any = None


@dataclass(frozen=True)
class Page:
    """A page's rows (for the caller to render; all with the same columns), the answer
    without its "items", and the value the caller's guard read in the same statement (None
    without a guard)."""

    rows: Sequence[PageRow]
    answer: dict[str, Any]
    guard: Any = None


def list_page(
    conn: Connection,
    table: sa.Table,
    request: ListRequest,
    *,
    model: str,
    role: str,
    fields: Mapping[str, FilterField],
    visibility: Callable[[str], Visibility],
    limits: ListLimits,
    codec: CursorCodec,
    default_order: str = "created_at",
    guard: sa.ScalarSelect[Any] | None = None,
    indexes: Collection[tuple[str, ...]] = (),
) -> Page:
    """One page of `table` as `request` asks, for `role`. On PostgreSQL the page, its count
    and `guard` (say, the registry version the caller's cached model belongs to) are read
    by one statement, one round trip, built once per shape of request (statements.py); a
    second is needed only for an estimate of a filtered count past the exact limit, or when
    a page spans values and nulls. `indexes`: the column lists of the table's indexes, so an
    equality filter's page is read from its index in order (statements.reads_in_order)."""
    page, page_size = _paging(request, limits)
    mode = count_mode(request.count)
    dialect = conn.dialect.name
    conditions = parse_filters(
        request.filters, fields, visibility, model=model, role=role,
        max_values=limits.max_filter_values,
    )
    order = ordering(
        request.order_by, fields, visibility, model=model, role=role, default=default_order
    )
    fingerprint = query_fingerprint(model, request.filters, order.spelling)
    after = codec.decode(request.after, fingerprint) if request.after is not None else None
    offset = (page - 1) * page_size
    if dialect == "postgresql":
        statements = page_statements(
            table, conditions, order, after_kind(after), page_size=page_size,
            offset=offset > 0, count=mode,
            exact_limit=limits.count_exact_limit, guard=guard, guard_label=_GUARD,
            indexes=indexes,
        )
        params = {**filter_params(conditions), **after_params(order, after), OFFSET: offset}
        rows: Sequence[PageRow]
        rows, more, values = statements.run(conn, params, page_size)
        total = statements.count.total(
            conn, table, lambda: [condition.clause(dialect) for condition in conditions],
            values,
        )
        guarded = values.get(_GUARD)
    else:
        clauses = [condition.clause(dialect) for condition in conditions]
        query = sa.select(table).where(*clauses)
        rows, more = fetch_page(conn, query, order, after, page_size, offset=offset)
        total = count_rows(conn, table, clauses, mode, exact_limit=limits.count_exact_limit)
        guarded = conn.execute(sa.select(guard)).scalar() if guard is not None else None
    next_cursor = codec.encode(fingerprint, order.position_of(rows[-1])) if more else None
    answer = {
        "page": None if after is not None else page,
        "page_size": page_size,
        "total": total.value,
        "total_exact": total.exact,
        "next_cursor": next_cursor,
    }
    return Page(rows, answer, guarded)


_GUARD = "dmr_guard"


def _paging(request: ListRequest, limits: ListLimits) -> tuple[int, int]:
    page, size = request.page, request.page_size
    size = limits.default_page_size if size is None else size
    if page is None:
        page = 1
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise _invalid("page", f"Page must be a whole number from 1, not {page!r}.", "must be >= 1")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= limits.max_page_size:
        raise _invalid(
            "page_size",
            f"Page size must be a whole number from 1 to {limits.max_page_size}, not {size!r}.",
            f"must be 1..{limits.max_page_size}",
        )
    if request.after is not None and page != 1:
        raise _invalid(
            "page", "Give either page or after, not both: after continues from a cursor.",
            "page and after together",
        )
    offset = (page - 1) * size
    if offset > limits.max_offset:
        raise _invalid(
            "page",
            f"Page {page} of {size} records starts {offset} rows in, past the largest offset "
            f"({limits.max_offset} rows). Walk further with cursors: pass a page's "
            "next_cursor as after=... to get the page that follows it.",
            "past max_offset; use cursors (after=next_cursor)",
        )
    return page, size


def _invalid(argument: str, message: str, why: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [argument], "msg": why, "type": argument}])
