"""Keyset pages: each page starts where the last one ended, found through an index.

A page is ordered by one column and then by id (which breaks ties), and the next page is asked
for by the last row's `(value, id)`: `WHERE (column, id) > (:value, :id)`. The database seeks
to that point in an index that starts with the column (ties, rows of one value, are put in id
order as they are read), so a page costs the same at the start and at the end of a table,
where OFFSET would read and throw away every row before it. Because the position is a value,
not a count, rows inserted meanwhile shift nothing: a walk over all pages sees every row that
existed when it began exactly once (rows whose ordered value changes during the walk may
move, as in any keyset scheme).

Nulls sort as if larger than every value (last ascending, first descending), PostgreSQL's own
order, which its indexes serve in either direction. Past a cursor, a nullable column is read in
two index ranges, its values and its nulls, so neither needs an OR that would defeat the index.

A cursor is opaque to callers: `base64url(JSON) "." base64url(HMAC-SHA256)`. The MAC covers
the payload and a fingerprint of the query (model, filters, order), so an altered cursor or
one from another query is refused with `InvalidCursor`, never run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from ..errors import InvalidCursor

__all__ = [
    "AFTER_ID",
    "AFTER_VALUE",
    "CursorCodec",
    "KeysetOrder",
    "PageRow",
    "Position",
    "after_kind",
    "after_params",
    "cursor_key",
    "fetch_page",
    "query_fingerprint",
    "segments",
]

#: Longest cursor accepted, in characters (an order value is at most a few hundred bytes).
MAX_CURSOR_LENGTH = 4096
_FORMAT = 1
_MAC_BYTES = 20


@dataclass(frozen=True)
class Position:
    """Where a page ended: the order column's value (JSON form; None for null) and the id."""

    value: Any
    record_id: str


class PageRow(Protocol):
    """A row of a page: its values by position, and by column name through `_mapping` (a
    SQLAlchemy row, or a `DriverRow` read on the driver's connection)."""

    @property
    def _mapping(self) -> Mapping[Any, Any]: ...

    def __getitem__(self, index: int) -> Any: ...


@dataclass(frozen=True)
class KeysetOrder:
    """How rows are ordered: one column, then id in the same direction."""

    #: The order as the caller spelled it ("price", "-price"); part of the query fingerprint.
    spelling: str
    column: sa.ColumnElement[Any]
    id_column: sa.ColumnElement[Any]
    descending: bool
    #: Whether the column can hold nulls (then the nulls are read as a range of their own).
    nullable: bool
    #: A cursor's JSON value -> the value compared with `column`; raises ValueError,
    #: TypeError or ValidationError when the value does not fit the column.
    parse: Callable[[Any], Any]
    #: The row key that holds the column's value in fetched rows.
    key: str

    def sort_clauses(self) -> list[sa.ColumnElement[Any]]:
        if self.descending:
            return [self.column.desc().nulls_first(), self.id_column.desc()]
        return [self.column.asc().nulls_last(), self.id_column.asc()]

    def position_of(self, row: PageRow) -> Position:
        found = row._mapping
        return Position(to_jsonable_python(found[self.key]), str(found["id"]))


def fetch_page(
    conn: Connection,
    query: sa.Select[Any],
    order: KeysetOrder,
    after: Position | None,
    limit: int,
    *,
    offset: int = 0,
    run: Callable[[sa.Select[Any]], Sequence[sa.Row[Any]]] | None = None,
) -> tuple[list[sa.Row[Any]], bool]:
    """Up to `limit` rows of `query` after `after` (or from the start, skipping `offset`),
    and whether more follow. `query` selects the rows, with its filters, and no order.
    `run` executes each range's statement, its values bound in (default: on `conn`)."""
    wanted = limit + 1  # one more, to learn whether there is a next page
    params = after_params(order, after)
    rows: list[sa.Row[Any]] = []
    for segment in segments(query, order, after_kind(after)):
        statement = segment.limit(wanted - len(rows))
        if offset:
            statement = statement.offset(offset)
        if run is not None:
            found = run(statement.params(params))
        else:
            found = conn.execute(statement, params).all()
        rows.extend(found)
        if len(rows) >= wanted:
            break
    return rows[:limit], len(rows) > limit


#: Bound parameters of a position: the order column's value and the id.
AFTER_VALUE, AFTER_ID = "dmr_after_value", "dmr_after_id"


def after_kind(after: Position | None) -> str | None:
    """Which ranges a page past `after` reads: None from the start, "null" from inside the
    nulls, "value" from a value."""
    if after is None:
        return None
    return "null" if after.value is None else "value"


def after_params(order: KeysetOrder, after: Position | None) -> dict[str, Any]:
    """The values `segments` binds for `after`; raises `InvalidCursor` for a position whose
    value does not fit the order's column."""
    if after is None:
        return {}
    if after.value is None:
        return {AFTER_ID: after.record_id}
    return {AFTER_VALUE: _parsed(order, after.value), AFTER_ID: after.record_id}


def segments(
    query: sa.Select[Any], order: KeysetOrder, after: str | None
) -> list[sa.Select[Any]]:
    """The ranges that make up the order past a position of kind `after` (see
    `after_kind`), each a select ordered and bounded on its own, the position's value and id
    the bound parameters `AFTER_VALUE` and `AFTER_ID` (see `after_params`)."""
    column, ident = order.column, order.id_column
    by_id = ident.desc() if order.descending else ident.asc()
    values = query.order_by(*order.sort_clauses())
    if order.nullable:
        values = values.where(column.is_not(None))
    nulls = query.where(column.is_(None)).order_by(by_id)
    if after is None:
        # From the start the whole order is one range: an index on (column, id) gives nulls
        # last read forwards and first read backwards, just as the sort clauses ask.
        return [query.order_by(*order.sort_clauses())]
    after_id = sa.bindparam(AFTER_ID, type_=ident.type)
    beyond_id = ident < after_id if order.descending else ident > after_id
    if after == "null":  # the walk is inside the nulls
        rest = nulls.where(beyond_id)
        return [rest, values] if order.descending else [rest]
    bound = sa.tuple_(sa.bindparam(AFTER_VALUE, type_=column.type), after_id)
    key = sa.tuple_(column, ident)
    later = key < bound if order.descending else key > bound
    parts = [values.where(later)]
    if order.nullable and not order.descending:
        parts.append(nulls)
    return parts


def _parsed(order: KeysetOrder, value: Any) -> Any:
    try:
        return order.parse(value)
    except (ValueError, TypeError, ValidationError):
        raise InvalidCursor(
            f"The cursor's position does not fit the order {order.spelling!r}; it belongs to "
            "another query or an earlier version of the model.",
            errors=[{"loc": ["after"], "msg": "does not fit the order", "type": "cursor"}],
        ) from None


def query_fingerprint(model: str, filters: Any, order: str) -> str:
    """A short digest of what a cursor belongs to: the model, its filters and its order."""
    canonical = json.dumps(
        {"model": model, "filters": to_jsonable_python(filters or {}, fallback=str),
         "order": order},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def cursor_key(secret: str, database_url: sa.URL) -> bytes:
    """The key cursors are signed with: the configured secret, else one derived from the
    database URL with its password, which every worker of a deployment already shares."""
    if secret:
        return hashlib.sha256(b"dmr-cursor-secret\0" + secret.encode()).digest()
    url = database_url.render_as_string(hide_password=False)
    return hashlib.sha256(b"dmr-cursor-url\0" + url.encode()).digest()


class CursorCodec:
    """Makes and checks cursors with one secret key (bytes); every worker must share it."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, fingerprint: str, position: Position) -> str:
        payload = json.dumps(
            {"f": _FORMAT, "q": fingerprint, "v": position.value, "i": position.record_id},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: Any, fingerprint: str) -> Position:
        """The position a cursor names; raises `InvalidCursor` when it was altered, is
        malformed, or belongs to another query."""
        payload = self._verified_payload(cursor)
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _invalid("is not a cursor this registry made") from None
        if not isinstance(data, dict) or data.get("f") != _FORMAT or not isinstance(
            data.get("i"), str
        ):
            raise _invalid("is not a cursor this registry made")
        if data.get("q") != fingerprint:
            raise _invalid(
                "was made for another query (a different model, filters or order); a cursor "
                "continues only the listing that returned it"
            )
        return Position(data.get("v"), data["i"])

    def _verified_payload(self, cursor: Any) -> bytes:
        if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
            raise _invalid(f"must be a non-empty string of at most {MAX_CURSOR_LENGTH} characters")
        encoded_payload, _, encoded_mac = cursor.partition(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise _invalid("is not a cursor this registry made") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise _invalid("was altered, or was made with another key")
        return payload

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid(why: str) -> InvalidCursor:
    return InvalidCursor(
        f"The cursor {why}.",
        errors=[{"loc": ["after"], "msg": why, "type": "cursor"}],
    )
