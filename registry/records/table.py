"""Record tables: one real table per model, with columns typed from the model's fields.

Every table has `id`, `version` (optimistic concurrency) and created/updated at and by; each
field adds one column. Scalars get their SQL type; choices are stored as their values; lists,
sets, dicts and nested models are JSON. Field columns are nullable: Pydantic validates, and a
column added by a later registration must accept the rows that were there before it.
"""

from __future__ import annotations

import decimal
import enum
import functools
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Dialect

from ..driver_insert import DriverInsert
from ..driver_statement import DriverStatement
from ..errors import ValidationFailed
from ..names import table_name_for
from ..tables import DecimalType, EncodedJSON, JSONType, UTCDateTime, as_utc
from ..types import FieldKind, FieldType, classify

if TYPE_CHECKING:
    from ..query.cursors import PageRow

__all__ = ["RecordTable", "column_type_for"]

_COLUMN_TYPES: dict[FieldKind, Any] = {
    FieldKind.STRING: sa.Text,
    FieldKind.INTEGER: sa.BigInteger,
    FieldKind.FLOAT: sa.Double,
    FieldKind.DECIMAL: DecimalType,
    FieldKind.BOOLEAN: sa.Boolean,
    FieldKind.DATE: sa.Date,
    FieldKind.DATETIME: UTCDateTime,
    FieldKind.TIME: sa.Time,
    FieldKind.UUID: sa.Uuid,
}


def column_type_for(field_type: FieldType) -> sa.types.TypeEngine[Any]:
    """The SQL type that stores a field of this kind."""
    if field_type.kind is FieldKind.CHOICE:
        return _choice_column_type(field_type.choices)
    if field_type.kind is FieldKind.JSON:
        return JSONType
    column_type: sa.types.TypeEngine[Any] = _COLUMN_TYPES[field_type.kind]()
    return column_type


def _choice_column_type(choices: tuple[Any, ...]) -> sa.types.TypeEngine[Any]:
    if choices and all(isinstance(c, str) for c in choices):
        return sa.Text()
    if choices and all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        return sa.BigInteger()
    # Mixed choices ("a" or 1) keep their JSON type and still compare with `=` in filters.
    return EncodedJSON()


#: Most digits a stored decimal may have, written out without an exponent. PostgreSQL's
#: NUMERIC holds far more, but "1e1000000" must not become a megabyte of zeros.
MAX_DECIMAL_DIGITS = 1000
#: The range of a BIGINT column, which integer fields are stored in.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1


def canonical_decimal(value: decimal.Decimal, places: int | None) -> decimal.Decimal:
    """One spelling per number, so that equal decimals are equal as stored text on SQLite
    and come back alike from both backends: the declared places when there are some
    (12.5 -> 12.50), else no trailing zeros and no exponent (12.500 -> 12.5, 1E+2 -> 100).
    Raises `ValueError` for NaN, infinities and numbers of over `MAX_DECIMAL_DIGITS` digits."""
    if not value.is_finite():
        raise ValueError("is not a finite number")
    _require_digits(value)
    with decimal.localcontext() as context:
        context.prec = 2 * MAX_DECIMAL_DIGITS + (places or 0)
        if places is not None:
            canonical = value.quantize(decimal.Decimal(1).scaleb(-places))
        elif value == value.to_integral_value():
            canonical = value.quantize(decimal.Decimal(1))
        else:
            canonical = value.normalize()
    _require_digits(canonical)
    return canonical


def _require_digits(value: decimal.Decimal) -> None:
    """Refuse a decimal that needs more than `MAX_DECIMAL_DIGITS` digits written out."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    count = len(digits)
    written = count + exponent if exponent >= 0 else -exponent + max(count + exponent, 1)
    if written > MAX_DECIMAL_DIGITS:
        raise ValueError(f"needs more than {MAX_DECIMAL_DIGITS} digits written out")


#: A record id on PostgreSQL compares byte by byte (collation "C"), as SQLite's do: every write
#: puts it into two B-trees (the key and `(created_at, id)`), and the database's own collation
#: made each comparison a locale call (a fifth of a bulk COPY's CPU, measured). Ids are ASCII,
#: so their order is the same under both. Tables made before keep their collation.
RECORD_ID = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


#: Kinds whose column gives values JSON has as they are (a JSON column's are decoded JSON;
#: a choice's are its JSON values).
_NATIVE = frozenset({
    FieldKind.STRING, FieldKind.INTEGER, FieldKind.FLOAT, FieldKind.BOOLEAN, FieldKind.CHOICE,
    FieldKind.JSON,
})
#: The system columns that hold times; the others are text and numbers.
_TIME_COLUMNS = frozenset({"created_at", "updated_at"})


@functools.lru_cache(maxsize=1024)
def _taker(fields: tuple[str, ...], wanted: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving a row's values of `wanted`, in that order, from rows whose columns
    are `fields` (a tuple even for one column)."""
    positions = [fields.index(name) for name in wanted]
    if len(positions) == 1:
        (position,) = positions
        return lambda row: (row[position],)
    return operator.itemgetter(*positions)


def _system_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", RECORD_ID, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("updated_by", sa.String(200)),
    ]


@dataclass(frozen=True, eq=False)
class RecordTable:
    """A model's table and the conversions between validated models, rows and records."""

    model_name: str
    model: type[BaseModel]
    table: sa.Table
    field_types: Mapping[str, FieldType]

    @classmethod
    def for_model(cls, model_name: str, model: type[BaseModel]) -> RecordTable:
        field_types = {name: classify(info.annotation) for name, info in model.model_fields.items()}
        columns = [
            sa.Column(name, column_type_for(ftype), nullable=True)
            for name, ftype in field_types.items()
        ]
        table = sa.Table(table_name_for(model_name), sa.MetaData(), *_system_columns(), *columns)
        return cls(model_name, model, table, field_types)

    @property
    def field_names(self) -> list[str]:
        return list(self.field_types)

    # Statements are built once per table: building one per call costs more than running it.
    @functools.cached_property
    def insert(self) -> sa.Insert:
        return sa.insert(self.table)

    @functools.cached_property
    def insert_row(self) -> DriverInsert:
        """Insert one row (every column given) in a connection's transaction."""
        return DriverInsert(self.table)

    @functools.cached_property
    def pg_read(self) -> sa.Select[Any]:
        """The one-statement read for PostgreSQL (see `pg_statements`)."""
        from .pg_statements import read_statement

        return read_statement(self)

    def pg_read_on(self, dialect: Dialect) -> DriverStatement:
        """`pg_read` compiled once for `dialect`, to run on the driver's connection: a read
        takes less time in PostgreSQL than in SQLAlchemy's execution of it."""
        driven = self._pg_reads.get(dialect.name)
        if driven is None:
            driven = self._pg_reads[dialect.name] = DriverStatement(self.pg_read, dialect)
        return driven

    @functools.cached_property
    def _pg_reads(self) -> dict[str, DriverStatement]:
        return {}

    def pg_create(self, *, with_key: bool) -> sa.Select[Any]:
        """The one-statement create for PostgreSQL (see `pg_statements`)."""
        return self._pg_create_statements[with_key]

    @functools.cached_property
    def _pg_create_statements(self) -> dict[bool, sa.Select[Any]]:
        from .pg_statements import create_statement  # it builds on this module

        return {key: create_statement(self, with_key=key) for key in (False, True)}

    @functools.cached_property
    def select_by_id(self) -> sa.Select[Any]:
        return sa.select(self.table).where(self.table.c.id == sa.bindparam("record_id"))

    @functools.cached_property
    def delete_by_id(self) -> sa.Delete:
        return sa.delete(self.table).where(self.table.c.id == sa.bindparam("record_id"))

    def column_values(self, instance: BaseModel) -> dict[str, Any]:
        """The validated instance as column values: Python scalars, JSON for the rest."""
        python = instance.model_dump()
        values: dict[str, Any] = {}
        for name, stored_as_is in self._stored_as_is:
            value = python[name]
            # Most values of a create are plain text or booleans, which the conversion
            # would hand back unchanged: skip its call (this runs for every field written).
            if value is None or type(value) is stored_as_is:
                values[name] = value
            else:
                values[name] = self.to_column_value(name, value)
        return values

    @functools.cached_property
    def _stored_as_is(self) -> tuple[tuple[str, type | None], ...]:
        """Each field, with the one Python type whose values its column stores unchanged
        (`to_column_value` returns them as they are), or None when every value is converted."""
        as_is = {FieldKind.STRING: str, FieldKind.BOOLEAN: bool}
        return tuple((name, as_is.get(ftype.kind)) for name, ftype in self.field_types.items())

    def to_column_value(self, name: str, value: Any) -> Any:
        """One field's validated Python value as its column stores it; raises
        `ValidationFailed` naming the field for a value no column of its kind can hold."""
        try:
            return self._column_value(name, value)
        except (ValueError, OverflowError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else (
                "falls outside the years 1 to 9999 in UTC"
            )
            raise ValidationFailed(
                f"Field {name!r} of {self.model_name!r} {why}.",
                model=self.model_name,
                field=name,
                errors=[{"loc": [name], "msg": why, "type": "out_of_range"}],
            ) from None

    def _column_value(self, name: str, value: Any) -> Any:
        ftype = self.field_types[name]
        if value is None:
            return None
        if ftype.kind in (FieldKind.JSON, FieldKind.CHOICE):
            stored = to_jsonable_python(value)
            if ftype.container == "set" and isinstance(stored, list):
                # A set has no order, and iteration order differs between processes: store
                # one order, so equal sets are equal rows and an update sees no false change.
                stored.sort(key=lambda item: json.dumps(item, sort_keys=True))
            return stored
        if ftype.kind is FieldKind.DATETIME:
            return as_utc(value)
        if ftype.kind is FieldKind.STRING:
            # EmailStr and URL types dump as objects in Python mode; an unvalidated default
            # may be an Enum member, whose str() is its name, not its value.
            return str(value.value if isinstance(value, enum.Enum) else value)
        if ftype.kind is FieldKind.INTEGER and not MIN_INTEGER <= value <= MAX_INTEGER:
            raise ValueError("is outside the 64-bit integer range an integer column holds")
        if ftype.kind is FieldKind.FLOAT:
            number = float(value)  # an int default of a float field reads as a float everywhere
            if not math.isfinite(number):
                raise ValueError("is NaN or an infinity, which JSON cannot carry")
            return number
        if ftype.kind is FieldKind.DECIMAL:
            return canonical_decimal(value, self.decimal_places.get(name))
        return value

    @functools.cached_property
    def decimal_places(self) -> dict[str, int]:
        """The declared decimal places of decimal fields that have them."""
        places = {}
        for name, info in self.model.model_fields.items():
            for item in info.metadata:
                if getattr(item, "decimal_places", None) is not None:
                    places[name] = int(item.decimal_places)
        return places

    def field_values(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """The model's fields of a stored row, as Python values that validate again."""
        return {name: row[name] for name in self.field_types}

    def to_record(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """A stored row as the JSON-ready record callers receive, system columns first."""
        jsonable: dict[str, Any] = to_jsonable_python(
            {column: row[column] for column in self.record_columns}
        )
        return jsonable

    def to_records(self, rows: Sequence[PageRow]) -> list[dict[str, Any]]:
        """Rows that all have the same columns as records (see `to_record`). Values that JSON
        has already (text, numbers, booleans, JSON) are taken as they are; the rest (times,
        decimals, UUIDs) are made JSON-ready in one pass for the whole page."""
        if not rows:
            return []
        columns, converted = self.record_columns, self._converted_columns
        fields = tuple(rows[0]._mapping)  # the rows' column names, in their order
        take = _taker(fields, columns)
        records = [dict(zip(columns, take(row), strict=True)) for row in rows]
        if converted:
            take = _taker(fields, converted)
            jsonable = to_jsonable_python([take(row) for row in rows])
            for record, values in zip(records, jsonable, strict=True):
                record.update(zip(converted, values, strict=True))
        return records

    @functools.cached_property
    def _converted_columns(self) -> tuple[str, ...]:
        """The record's keys whose stored values JSON does not have as they are."""
        native = {name for name, ftype in self.field_types.items() if ftype.kind in _NATIVE}
        return tuple(
            column for column in self.record_columns
            if column in _TIME_COLUMNS or (column in self.field_types and column not in native)
        )

    @functools.cached_property
    def record_columns(self) -> tuple[str, ...]:
        """A record's keys, in order: id and version, the fields, then who and when."""
        return (
            "id", "version", *self.field_types,
            "created_at", "updated_at", "created_by", "updated_by",
        )
