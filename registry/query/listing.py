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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationFailed
from .counts import count_mode, count_rows
from .cursors import CursorCodec, fetch_page, query_fingerprint
from .fields import ordering
from .filters import FilterField, Visibility, compile_filters

__all__ = ["ListLimits", "ListRequest", "list_page"]


@dataclass(frozen=True)
class ListLimits:
    """The settings a list obeys (`models.*`)."""

    default_page_size: int
    max_page_size: int
    max_offset: int
    max_filter_values: int
    count_exact_limit: int


@dataclass(frozen=True)
class ListRequest:
    """What the caller asked for, as it arrived (checked by `list_page`)."""

    filters: Any = None
    order_by: Any = None
    page: Any = 1
    page_size: Any = None
    after: Any = None
    count: Any = None


def list_page(
    conn: Connection,
    table: sa.FromClause,
    request: ListRequest,
    *,
    model: str,
    role: str,
    fields: Mapping[str, FilterField],
    visibility: Callable[[str], Visibility],
    limits: ListLimits,
    codec: CursorCodec,
    default_order: str = "created_at",
) -> tuple[list[Mapping[Any, Any]], dict[str, Any]]:
    """The page's rows and the answer without its items (the caller renders each row as
    the role may see it and adds them as "items")."""
    page, page_size = _paging(request, limits)
    mode = count_mode(request.count)
    conditions = compile_filters(
        request.filters, fields, visibility, model=model, role=role,
        max_values=limits.max_filter_values, dialect=conn.dialect.name,
    )
    order = ordering(
        request.order_by, fields, visibility, model=model, role=role, default=default_order
    )
    fingerprint = query_fingerprint(model, request.filters, order.spelling)
    after = codec.decode(request.after, fingerprint) if request.after is not None else None
    query = sa.select(table).where(*conditions)
    rows, more = fetch_page(
        conn, query, order, after, page_size, offset=(page - 1) * page_size
    )
    total = count_rows(conn, table, conditions, mode, exact_limit=limits.count_exact_limit)
    next_cursor = codec.encode(fingerprint, order.position_of(rows[-1])) if more else None
    answer = {
        "page": None if after is not None else page,
        "page_size": page_size,
        "total": total.value,
        "total_exact": total.exact,
        "next_cursor": next_cursor,
    }
    return rows, answer


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
