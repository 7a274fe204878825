"""`DriverStatement`: a statement compiled once and run on the driver's connection.

A create command on PostgreSQL is one statement that takes well under a millisecond in the
database; SQLAlchemy's per-execution work around it (connection wrapper, compiled-cache
lookup, parameter processing, result setup, isolation level set and reset) cost about as
much again. So it is compiled once, each bind parameter keeps its type's own conversion (JSON,
UTC datetimes), and it runs on the driver connection that `Database.driver_autocommit`
lends, as `Catalog.state_version` and `DriverInsert` do. Errors are raised as SQLAlchemy's.

A list page is the same case for reads: `rows` gives every row, each column through its
type's own result conversion, as `DriverRow`s (tuples that also offer `_mapping`, as
SQLAlchemy's rows do), run on the connection `database.driver_of` lends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["DriverRow", "DriverStatement"]


class DriverRow(tuple[Any, ...]):
    """A row's values in the statement's column order; `_mapping` by column name."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


def _row_type(names: tuple[str, ...]) -> type[DriverRow]:
    return type("DriverRow", (DriverRow,), {"__slots__": (), "_fields": names})


class DriverStatement:
    """`statement` compiled for `dialect`; `first` runs it and returns its first row."""

    def __init__(self, statement: sa.Select[Any], dialect: Dialect) -> None:
        self.statement = statement
        self.dialect = dialect
        compiled = statement.compile(dialect=dialect)
        #: Whether values still change the SQL (an expanding IN list): then it cannot run here.
        self.complete = not compiled.post_compile_params
        self._results: list[tuple[int, Callable[[Any], Any]]] | None = None
        self.sql = compiled.string
        #: Values the statement itself holds (literals SQLAlchemy made parameters of).
        self.fixed: dict[str, Any] = {}
        self.conversions: list[tuple[str, Callable[[Any], Any]]] = []
        for bind, name in compiled.bind_names.items():
            if not bind.required:
                self.fixed[name] = bind.effective_value
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                self.conversions.append((name, convert))

    def first(self, driver: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run with `params` (by bind name) on the driver connection; the first row."""
        row: tuple[Any, ...] | None = driver.execute(self.sql, self._values(params)).fetchone()
        return row

    def rows(self, driver: Any, params: Mapping[str, Any]) -> list[DriverRow]:
        """Run with `params` on the driver connection; every row, each value converted by
        its column's type as SQLAlchemy would."""
        cursor = driver.execute(self.sql, self._values(params))
        found = cursor.fetchall()
        if self._results is None:  # the driver's column types are known once it has run
            self._results = self._conversions(cursor.description)
        if self._results:
            found = [list(row) for row in found]
            for row in found:
                for position, convert in self._results:
                    row[position] = convert(row[position])
        make = self._row_type
        return [make(row) for row in found]

    @functools.cached_property
    def _row_type(self) -> type[DriverRow]:
        return _row_type(tuple(self.statement.selected_columns.keys()))

    def _conversions(self, description: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        """(position, conversion) of each result column whose type converts what the driver
        gives (UTC datetimes, say), chosen as SQLAlchemy does from the column's type and the
        driver's type code for it."""
        dialect = self.dialect
        found: list[tuple[int, Callable[[Any], Any]]] = []
        columns = self.statement.selected_columns
        for position, (column, described) in enumerate(zip(columns, description, strict=True)):
            impl = column.type.dialect_impl(dialect)
            convert = impl.result_processor(dialect, described.type_code)
            if convert is not None:
                found.append((position, convert))
        return found

    def _values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self.fixed, **params}
        for name, convert in self.conversions:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        return values
