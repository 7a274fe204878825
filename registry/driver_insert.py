"""`DriverInsert`: INSERTs on SQLite that skip SQLAlchemy's execution machinery (one row,
or a batch given column by column).

A write on SQLite inserts its rows with the same statements every time, and
SQLAlchemy's per-execution work (compiled-cache lookup, parameter processing, result setup)
costs more than SQLite's insert itself. The statement is compiled once per column list, with
each column type's own bind conversion, and runs on the driver connection inside the
caller's transaction, as `Catalog.state_version` reads. Errors are raised as SQLAlchemy's,
with the parameters hidden as the engine hides them (`database.driver_error`). Other databases
take the ordinary path. Used for a create's record row, an import chunk's rows and every
write's audit outbox entry. (SQLAlchemy's execute events do not see these inserts on SQLite.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from .database import driver_error
from .tables import UTCDateTime

__all__ = ["DriverInsert"]

_Prepared = tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]


class _LastMoment:
    """A datetime column's bind conversion that hands back its last result when given the
    same datetime object again: a create converts one moment three times (its row's created
    and updated times, its audit entry's time), and SQLite's datetime formatting is the
    dearest conversion of its inserts. Datetimes are immutable, so the same object always
    converts alike; one conversion is shared by every `UTCDateTime` column of a dialect."""

    __slots__ = ("convert", "last")

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert
        self.last: tuple[Any, Any] = (None, None)

    def __call__(self, value: Any) -> Any:
        last = self.last  # one read: another thread may replace it meanwhile
        if value is last[0]:
            return last[1]
        converted = self.convert(value)
        self.last = (value, converted)
        return converted


_MOMENTS: dict[str, _LastMoment] = {}


def _conversion(column: sa.Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    if convert is None or not isinstance(column.type, UTCDateTime):
        return convert
    shared = _MOMENTS.get(dialect.name)
    if shared is None:
        shared = _MOMENTS.setdefault(dialect.name, _LastMoment(convert))
    return shared


class DriverInsert:
    """Insert one row into `table` in the caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.statement = sa.insert(table)
        self._prepared: dict[tuple[str, tuple[str, ...]], _Prepared] = {}

    def __call__(self, conn: Connection, row: Mapping[str, Any]) -> None:
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, dict(row))
            return
        sql, columns = self._prepare(conn.dialect, tuple(row))
        params = [
            row[name] if convert is None or row[name] is None else convert(row[name])
            for name, convert in columns
        ]
        driver = conn.connection.driver_connection
        assert driver is not None  # the caller's connection is open
        try:
            driver.execute(sql, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(conn, exc, sql) from exc

    def many(
        self, conn: Connection, names: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows given column by column (`columns[i]` holds column `names[i]` of every
        row): on SQLite each column is converted in one pass and the rows go to one
        `executemany` of the driver, without a dictionary per row."""
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, [dict(zip(names, row, strict=True))
                                          for row in zip(*columns, strict=True)])
            return
        sql, steps = self._prepare(conn.dialect, tuple(names))
        converted = [
            values if convert is None else [None if v is None else convert(v) for v in values]
            for (_name, convert), values in zip(steps, columns, strict=True)
        ]
        rows = list(zip(*converted, strict=True))
        driver = conn.connection.driver_connection
        assert driver is not None  # the caller's connection is open
        try:
            driver.executemany(sql, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(conn, exc, sql) from exc

    def _prepare(self, dialect: Dialect, names: tuple[str, ...]) -> _Prepared:
        key = (dialect.name, names)
        prepared = self._prepared.get(key)
        if prepared is None:
            quote = dialect.identifier_preparer.quote
            sql = (
                f"INSERT INTO {quote(self.table.name)} ({', '.join(map(quote, names))}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            columns = tuple((name, _conversion(self.table.c[name], dialect)) for name in names)
            prepared = self._prepared[key] = (sql, columns)
        return prepared

