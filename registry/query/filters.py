"""The list filter grammar, compiled to SQLAlchemy conditions on any table.

    {"field": value}                               equality (null: the field is null)
    {"field": {"eq"|"ne"|"gt"|"gte"|"lt"|"lte": value}}
    {"field": {"in": [value, ...]}}                at most `max_values` values
    {"field": {"startswith": "text"}}              text fields; % and _ match themselves
    {"field": {"is_null": true|false}}

Every condition, and every operator inside one field's object, is combined with AND. Each
operand is typed by the field (the field's own type adapter) and bound as a parameter, never
spliced into SQL. A field the role cannot read may not be filtered at all; on a masked field
only `is_null` is allowed, because the masked view shows nulls as nulls and nothing else about
the value (a range or a prefix would reveal the hidden value bit by bit).

`ne` keeps null values (a null is not equal to the operand), as Python's `!=` would.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from ..errors import InvalidFilter, PermissionDenied, UnknownField, ValidationFailed

__all__ = [
    "OPERATORS",
    "Condition",
    "FilterField",
    "Visibility",
    "compile_filters",
    "parse_filters",
]

#: Every operator, in the order error messages list them.
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "startswith", "is_null")
_RANGE = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


class Visibility(enum.Enum):
    """How a role sees a field: its value, a mask of it, or nothing."""

    PLAIN = "plain"
    MASKED = "masked"
    HIDDEN = "hidden"


@dataclass(frozen=True)
class FilterField:
    """One filterable column and how an operand becomes a value bound against it."""

    name: str
    column: sa.ColumnElement[Any]
    #: Operand -> the value the column holds; raises `ValidationError`, `ValueError` or
    #: `TypeError` for an operand of the wrong type.
    parse: Callable[[Any], Any]
    #: Whether gt/gte/lt/lte apply (not to booleans, nor to values stored as JSON).
    ordered: bool = True
    #: Whether startswith applies (text columns).
    text: bool = False
    #: False for values stored as JSON: only is_null applies to them.
    scalar: bool = True
    #: What the range operators compare, when it is not the column itself (SQLite keeps
    #: decimals as text, whose order is not number order), and how a parsed operand is
    #: turned into a value that compares with it.
    range_column: sa.ColumnElement[Any] | None = None
    range_operand: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Condition:
    """One checked filter condition: the field, the operator as SQL will apply it, and the
    typed value bound into it. Its `shape` says which SQL it takes, so a statement built for
    one shape serves every value (see statements.py)."""

    field: FilterField
    #: eq ne gt gte lt lte in startswith, or is_null / not_null (which bind nothing).
    operator: str
    value: Any = None

    @property
    def shape(self) -> tuple[str, str]:
        return (self.field.name, self.operator)

    def clause(self, dialect: str, name: str | None = None) -> sa.ColumnElement[bool]:
        """The condition as SQL. With `name`, its value is the bound parameter `name` (and
        `name`_like for startswith), given at execution by `params(name)`; without, the
        value is bound into the clause itself."""
        column = self.field.column
        if self.operator in ("is_null", "not_null"):
            return column.is_(None) if self.operator == "is_null" else column.is_not(None)
        if self.operator == "startswith":
            return self._starts_with(dialect, name)
        if self.operator in _RANGE:
            target = self.field.range_column if self.field.range_column is not None else column
            bound = _param(name, self.value, target.type)
            comparison: sa.ColumnElement[bool] = getattr(target, _RANGE[self.operator])(bound)
            return comparison
        bound = _param(name, self.value, column.type, expanding=self.operator == "in")
        if self.operator == "in":
            return column.in_(bound)
        return column == bound if self.operator == "eq" else column.is_distinct_from(bound)

    def params(self, name: str) -> dict[str, Any]:
        """The values `clause(dialect, name)` binds."""
        if self.operator in ("is_null", "not_null"):
            return {}
        if self.operator == "startswith":
            return {name: self.value, f"{name}_like": _like_prefix(self.value)}
        return {name: self.value}

    def _starts_with(self, dialect: str, name: str | None) -> sa.ColumnElement[bool]:
        column = self.field.column
        pattern = _param(None if name is None else f"{name}_like", _like_prefix(self.value),
                         column.type)
        condition: sa.ColumnElement[bool] = column.like(pattern, escape=_LIKE_ESCAPE)
        if dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case; PostgreSQL's does not. The exact prefix test
            # makes both answer alike, while LIKE still narrows the rows first.
            prefix = _param(name, self.value, column.type)
            condition = sa.and_(
                condition, sa.func.substr(column, 1, sa.func.length(prefix)) == prefix
            )
        return condition


_LIKE_ESCAPE = "/"


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching what starts with `text`, whose %, _ and / match themselves."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return text + "%"


def _param(
    name: str | None, value: Any, type_: Any, *, expanding: bool = False
) -> sa.BindParameter[Any]:
    if name is None:
        return sa.bindparam(None, value, type_=type_, expanding=expanding)
    return sa.bindparam(name, type_=type_, expanding=expanding)


def compile_filters(
    filters: Any,
    fields: Mapping[str, FilterField],
    visibility: Callable[[str], Visibility],
    *,
    model: str,
    role: str,
    max_values: int,
    dialect: str,
) -> list[sa.ColumnElement[bool]]:
    """The conditions a filter object stands for (AND them together), values bound in.

    Raises as `parse_filters` does."""
    parsed = parse_filters(
        filters, fields, visibility, model=model, role=role, max_values=max_values
    )
    return [condition.clause(dialect) for condition in parsed]


def parse_filters(
    filters: Any,
    fields: Mapping[str, FilterField],
    visibility: Callable[[str], Visibility],
    *,
    model: str,
    role: str,
    max_values: int,
) -> list[Condition]:
    """The checked conditions of a filter object, each value typed by its field.

    Raises `ValidationFailed` when `filters` is not an object, `UnknownField` for a field the
    table lacks, `PermissionDenied` for one the role may not filter on this way, and
    `InvalidFilter` for an unknown operator or a mistyped operand."""
    if filters is None:
        return []
    if not isinstance(filters, Mapping):
        raise ValidationFailed(
            "Filters must be an object of field: value or field: {operator: value}.",
            errors=[{"loc": ["filters"], "msg": "must be an object", "type": "filter"}],
        )
    conditions: list[Condition] = []
    for name, condition in filters.items():
        field = _field(fields, model, name)
        operators = _operators(field, condition)
        _check_visible(field, operators, visibility(field.name), model=model, role=role)
        for operator, operand in operators.items():
            conditions.append(_condition(field, operator, operand, max_values=max_values))
    return conditions


def _field(fields: Mapping[str, FilterField], model: str, name: Any) -> FilterField:
    field = fields.get(name) if isinstance(name, str) else None
    if field is None:
        raise UnknownField(
            f"Model {model!r} has no field {name!r} to filter on.",
            model=model,
            fields=[str(name)],
            errors=[{"loc": [str(name)], "msg": "Unknown field", "type": "unknown_field"}],
        )
    return field


def _operators(field: FilterField, condition: Any) -> dict[str, Any]:
    if not isinstance(condition, Mapping):
        return {"eq": condition}
    if not condition:
        raise _invalid(field, None, "the operator object is empty; give at least one operator")
    unknown = [str(op) for op in condition if op not in OPERATORS]
    if unknown:
        raise _invalid(
            field, unknown[0],
            f"unknown operator {unknown[0]!r}; the operators are {', '.join(OPERATORS)}",
        )
    return dict(condition)


def _check_visible(
    field: FilterField, operators: Mapping[str, Any], seen: Visibility, *, model: str, role: str
) -> None:
    if seen is Visibility.PLAIN or (seen is Visibility.MASKED and set(operators) == {"is_null"}):
        return
    how = "filter on" if seen is Visibility.HIDDEN else "filter other than with is_null on masked"
    raise PermissionDenied(
        f"Role {role!r} cannot {how} field {field.name!r} of {model!r}.",
        model=model,
        role=role,
        field=field.name,
    )


def _condition(field: FilterField, operator: str, operand: Any, *, max_values: int) -> Condition:
    if operator == "is_null":
        if not isinstance(operand, bool):
            raise _invalid(field, operator, "the operand must be true or false")
        return Condition(field, "is_null" if operand else "not_null")
    if not field.scalar:
        raise _invalid(field, operator, "does not apply: the field holds JSON; only is_null does")
    if operator == "in":
        return Condition(field, "in", _in_values(field, operand, max_values))
    if operator == "startswith":
        return Condition(field, "startswith", _starts_with_operand(field, operand))
    if operator in ("eq", "ne"):
        if operand is None:  # equal to null: is null; not equal: is not null
            return Condition(field, "is_null" if operator == "eq" else "not_null")
        return Condition(field, operator, _typed(field, operator, operand))
    if not field.ordered:
        raise _invalid(field, operator, "does not apply: the field's values have no order")
    if operand is None:
        raise _invalid(field, operator, "cannot compare with null; use is_null")
    value = _typed(field, operator, operand)
    if field.range_operand is not None:
        value = field.range_operand(value)
    return Condition(field, operator, value)


def _in_values(field: FilterField, operand: Any, max_values: int) -> list[Any]:
    if not isinstance(operand, list | tuple):
        raise _invalid(field, "in", "the operand must be a list of values")
    if len(operand) > max_values:
        raise _invalid(
            field, "in", f"{len(operand)} values; the limit is {max_values}",
            limit=max_values,
        )
    if any(value is None for value in operand):
        raise _invalid(field, "in", "the list holds null; use is_null for nulls")
    return [_typed(field, "in", value) for value in operand]


def _starts_with_operand(field: FilterField, operand: Any) -> str:
    if not field.text:
        raise _invalid(field, "startswith", "does not apply: the field is not text")
    if not isinstance(operand, str) or "\x00" in operand:
        raise _invalid(field, "startswith", "the operand must be text without NUL characters")
    return operand


def _typed(field: FilterField, operator: str, operand: Any) -> Any:
    try:
        return field.parse(operand)
    except ValidationError as exc:
        reason = exc.errors(include_url=False, include_input=False)[0]["msg"]
    except (ValueError, TypeError) as exc:
        reason = str(exc) or type(exc).__name__
    raise _invalid(field, operator, f"the value does not fit the field's type ({reason})")


def _invalid(field: FilterField, operator: str | None, why: str, **details: Any) -> InvalidFilter:
    where = f"Filter on field {field.name!r}"
    if operator is not None:
        where += f" ({operator})"
    where += ":"
    loc = [field.name] if operator is None else [field.name, operator]
    return InvalidFilter(
        f"{where} {why}.",
        field=field.name,
        operator=operator,
        errors=[{"loc": loc, "msg": why, "type": "filter"}],
        **details,
    )
