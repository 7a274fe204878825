"""`DriverStatement`: a statement compiled once and run on the driver's connection.

A create command on PostgreSQL is one statement that takes well under a millisecond in the
database; SQLAlchemy's per-execution work around it (connection wrapper, compiled-cache
lookup, parameter processing, result setup, isolation level set and reset) cost about as
much again. So it is compiled once, each bind parameter keeps its type's own conversion (JSON,
UTC datetimes), and it runs on the driver connection that `Database.driver_autocommit`
lends, as `Catalog.state_version` and `DriverInsert` do. Errors are raised as SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["DriverStatement"]


class DriverStatement:
    """`statement` compiled for `dialect`; `first` runs it and returns its first row."""

    def __init__(self, statement: sa.Select[Any], dialect: Dialect) -> None:
        self.statement = statement
        compiled = statement.compile(dialect=dialect)
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
        values = {**self.fixed, **params}
        for name, convert in self.conversions:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        row: tuple[Any, ...] | None = driver.execute(self.sql, values).fetchone()
        return row
