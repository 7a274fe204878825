"""Filterable and orderable fields, built from a model's record table or from any table.

`record_fields` serves the record tables (a field's operand is typed by the model's own
annotation, then stored as the column stores it); `table_fields` serves any SQLAlchemy table
(projections, read models), typing operands by each column's Python type.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter

from ..errors import PermissionDenied, UnknownField, ValidationFailed
from ..types import FieldKind, FieldType
from .cursors import KeysetOrder
from .filters import FilterField, Visibility

__all__ = ["ordering", "record_fields", "table_fields", "visibility_of"]


class RecordColumns(Protocol):
    """What a model's record table offers (registry's RecordTable)."""

    table: sa.Table
    model: type[BaseModel]
    field_types: Mapping[str, FieldType]

    def to_column_value(self, name: str, value: Any) -> Any: ...


class FieldRules(Protocol):
    """What a model's permissions offer (registry's ModelPermissions)."""

    def field_visibility(self, field: str, user_role: str) -> Any: ...


def _utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("falls outside the years 1 to 9999 in UTC") from None


def _bigint(value: int) -> int:
    if not -(2**63) <= value < 2**63:
        raise ValueError("is outside the 64-bit integer range")
    return value


def _system_fields(table: sa.Table) -> dict[str, FilterField]:
    text = TypeAdapter(str).validate_python
    moment = TypeAdapter(datetime.datetime).validate_python
    number = TypeAdapter(int).validate_python
    return {
        "id": FilterField("id", table.c.id, text, text=True),
        "version": FilterField("version", table.c.version, lambda v: _bigint(number(v))),
        "created_at": FilterField("created_at", table.c.created_at, lambda v: _utc(moment(v))),
        "updated_at": FilterField("updated_at", table.c.updated_at, lambda v: _utc(moment(v))),
        "created_by": FilterField("created_by", table.c.created_by, text, text=True),
        "updated_by": FilterField("updated_by", table.c.updated_by, text, text=True),
    }


#: System columns that never hold null (the rest may).
_NOT_NULL = frozenset({"id", "version", "created_at", "updated_at"})


@functools.lru_cache(maxsize=512)
def record_fields(records: RecordColumns, dialect: str) -> Mapping[str, FilterField]:
    """Every field of a record table that filters and orders name, system columns included.
    Cached per table object: building type adapters costs more than a query."""
    fields = _system_fields(records.table)
    for name, ftype in records.field_types.items():
        fields[name] = _record_field(records, name, ftype, dialect)
    return fields


def _record_field(
    records: RecordColumns, name: str, ftype: FieldType, dialect: str
) -> FilterField:
    column = records.table.c[name]
    if ftype.kind is FieldKind.JSON:
        return FilterField(name, column, _no_value(name), ordered=False, scalar=False)
    adapter: TypeAdapter[Any] = TypeAdapter(records.model.model_fields[name].annotation)  # type: ignore[arg-type]

    def parse(value: Any) -> Any:
        return records.to_column_value(name, adapter.validate_python(value))

    text_column = isinstance(column.type, sa.Text | sa.String)
    ordered = ftype.kind is not FieldKind.BOOLEAN and not (
        ftype.kind is FieldKind.CHOICE and not text_column
        and not isinstance(column.type, sa.BigInteger)
    )
    if ftype.kind is FieldKind.DECIMAL and dialect == "sqlite":
        # SQLite keeps decimals as exact text, whose order is not number order.
        return FilterField(
            name, column, parse, text=False, range_column=sa.cast(column, sa.Float),
            range_operand=float,
        )
    return FilterField(
        name, column, parse, ordered=ordered,
        text=text_column and ftype.kind in (FieldKind.STRING, FieldKind.CHOICE),
    )


def _no_value(name: str) -> Callable[[Any], Any]:
    def refuse(_value: Any) -> Any:
        raise ValueError(f"field {name!r} holds JSON; only is_null applies to it")

    return refuse


def table_fields(table: sa.Table) -> Mapping[str, FilterField]:
    """Filter fields for any table: each column, typed by its Python type (JSON columns take
    only is_null)."""
    fields = {}
    for column in table.c:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = None
        if python_type in (dict, list, None):
            fields[column.key] = FilterField(
                column.key, column, _no_value(column.key), ordered=False, scalar=False
            )
            continue
        validate = TypeAdapter(python_type).validate_python
        parse = (lambda v, f=validate: _utc(f(v))) if python_type is datetime.datetime else validate
        fields[column.key] = FilterField(
            column.key, column, parse, ordered=python_type is not bool,
            text=python_type is str,
        )
    return fields


def visibility_of(rules: FieldRules, role: str) -> Callable[[str], Visibility]:
    """How `role` sees each field under the model's field rules."""

    def visibility(field: str) -> Visibility:
        how = rules.field_visibility(field, role)
        if how is True:
            return Visibility.PLAIN
        return Visibility.MASKED if callable(how) else Visibility.HIDDEN

    return visibility


def ordering(
    order_by: Any,
    fields: Mapping[str, FilterField],
    visibility: Callable[[str], Visibility],
    *,
    model: str,
    role: str,
    default: str = "created_at",
    not_null: frozenset[str] = _NOT_NULL,
) -> KeysetOrder:
    """The keyset order `order_by` names ("field" or "-field"; default `default`). Raises
    `ValidationFailed`, `UnknownField`, and `PermissionDenied` for a field the role cannot
    read plainly (sorting by a hidden or masked value would reveal it row by row)."""
    if order_by is None or order_by == "":
        order_by = default
    if not isinstance(order_by, str):
        raise ValidationFailed(
            f"order_by must be a field name, optionally with a leading '-', not {order_by!r}.",
            errors=[{"loc": ["order_by"], "msg": "must be a field name", "type": "argument"}],
        )
    name = order_by.removeprefix("-")
    field = fields.get(name)
    if field is None:
        raise UnknownField(
            f"Model {model!r} has no field {name!r} to order by.",
            model=model, fields=[name],
            errors=[{"loc": [name], "msg": "Unknown field", "type": "unknown_field"}],
        )
    if visibility(name) is not Visibility.PLAIN:
        raise PermissionDenied(
            f"Role {role!r} cannot order by field {name!r} of {model!r}.",
            model=model, role=role, field=name,
        )
    if not field.scalar:
        raise ValidationFailed(
            f"Field {name!r} of {model!r} holds JSON and cannot order a list.",
            model=model, field=name,
            errors=[{"loc": ["order_by"], "msg": "not orderable", "type": "argument"}],
        )
    column = field.range_column if field.range_column is not None else field.column
    operand = field.range_operand

    def parse(value: Any) -> Any:
        parsed = field.parse(value)
        return operand(parsed) if operand is not None else parsed

    return KeysetOrder(
        spelling=order_by, column=column, id_column=fields["id"].column,
        descending=order_by.startswith("-"), nullable=name not in not_null, parse=parse,
        key=name,
    )
