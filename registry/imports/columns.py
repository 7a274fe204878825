"""From validated values to what record columns store, one column at a time.

A bulk write handles thousands of values of one field together, so each step here works on a
whole column: one list comprehension of built-in calls where the values need no care, and a
value-by-value pass, naming the values a column cannot hold, only when that fails. A value a
column cannot hold (an integer outside 64 bits, an infinite float, a decimal of a thousand
digits, a date-time outside the years 1 to 9999 in UTC, text with a NUL character) makes its
row a rejected one rather than failing the whole batch.

`copy_text` writes the columns in PostgreSQL's COPY text format (tab-separated, `\\N` for
NULL, backslash escapes), so a batch reaches the database as one block of text instead of a
call per row.
"""

from __future__ import annotations

import decimal
import enum
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..records import RecordTable
from ..records.table import MAX_DECIMAL_DIGITS, MAX_INTEGER, MIN_INTEGER, canonical_decimal
from ..tables import as_utc
from ..types import FieldKind

__all__ = ["ColumnPlan", "copy_escape", "copy_text"]

#: Positions of a column's values it cannot hold, and why.
Problems = dict[int, str]
#: A column's validated values (None kept) -> their stored values, and the problems.
Converter = Callable[[list[Any]], tuple[list[Any], Problems]]
#: A column's stored values -> their COPY text.
Encoder = Callable[[list[Any]], list[str]]

_NULL = "\\N"
_SPECIAL = ("\\", "\t", "\n", "\r")
_BOOLEANS = {True: "t", False: "f", None: _NULL}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class ColumnPlan:
    """How one model's fields become stored values and COPY text."""

    def __init__(self, records: RecordTable) -> None:
        self.fields = records.field_names
        self.converters = [_converter(records, name) for name in self.fields]
        self.encoders = [_encoder(records, name) for name in self.fields]

    def convert(
        self, columns: list[list[Any]]
    ) -> tuple[list[list[Any]], dict[int, list[dict[str, Any]]]]:
        """The stored values of each column, and per row position the errors of values its
        columns cannot hold (`{"loc": [field], "msg", "type": "out_of_range"}`)."""
        converted: list[list[Any]] = []
        errors: dict[int, list[dict[str, Any]]] = {}
        for name, convert, values in zip(self.fields, self.converters, columns, strict=True):
            if convert is None:
                converted.append(values)
                continue
            stored, problems = convert(values)
            converted.append(stored)
            for position, why in problems.items():
                errors.setdefault(position, []).append(
                    {"loc": [name], "msg": why, "type": "out_of_range"}
                )
        return converted, errors

    def encode(self, columns: Sequence[list[Any]]) -> list[list[str]]:
        """Each column's stored values as COPY text."""
        return [encode(values) for encode, values in zip(self.encoders, columns, strict=True)]


def copy_text(columns: Sequence[Sequence[str]]) -> str:
    """Rows of COPY text from columns of encoded values."""
    if not columns or not columns[0]:
        return ""
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def copy_escape(value: str) -> str:
    """One text value as COPY's text format writes it."""
    return value.translate(_ESCAPES)


# -- stored values --------------------------------------------------------------------------


def _converter(records: RecordTable, name: str) -> Converter | None:
    """The step from a validated value to its stored value; None when there is none (most
    fields), so the common case costs nothing."""
    field_type = records.field_types[name]
    kind = field_type.kind
    if kind is FieldKind.INTEGER:
        return _integers
    if kind is FieldKind.FLOAT:
        return _floats
    if kind is FieldKind.DECIMAL:
        return _decimals(records.decimal_places.get(name))
    if kind is FieldKind.STRING:
        return _texts
    if kind is FieldKind.DATETIME:
        return lambda values: _per_value(values, as_utc, "falls outside the years 1 to 9999 in UTC")
    if kind is FieldKind.CHOICE and _plain_choices(field_type.choices):
        return _choices
    if kind in (FieldKind.JSON, FieldKind.CHOICE):
        return lambda values: _per_value(values, lambda v: records.to_column_value(name, v))
    return None


def _per_value(
    values: list[Any], step: Callable[[Any], Any], overflow: str | None = None
) -> tuple[list[Any], Problems]:
    try:
        return [None if v is None else step(v) for v in values], {}
    except (ValueError, OverflowError, ArithmeticError):
        pass
    stored: list[Any] = []
    problems: Problems = {}
    for position, value in enumerate(values):
        try:
            stored.append(None if value is None else step(value))
        except OverflowError:
            problems[position] = overflow or "is out of range"
            stored.append(None)
        except (ValueError, ArithmeticError) as exc:
            problems[position] = _why(exc)
            stored.append(None)
    return stored, problems


def _why(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    errors = getattr(exc, "errors", None)
    if errors and isinstance(errors, list) and isinstance(errors[0], dict):
        return str(errors[0].get("msg", message))
    return str(message)


def _integers(values: list[Any]) -> tuple[list[Any], Problems]:
    present = [v for v in values if v is not None]
    if not present or (MIN_INTEGER <= min(present) and max(present) <= MAX_INTEGER):
        return values, {}
    why = "is outside the 64-bit integer range an integer column holds"
    return values, {p: why for p, v in enumerate(values)
                    if v is not None and not MIN_INTEGER <= v <= MAX_INTEGER}


def _floats(values: list[Any]) -> tuple[list[Any], Problems]:
    # An int default of a float field reads as a float everywhere.
    floats, problems = _per_value(values, float, "is too large for a float column")
    try:
        if math.isfinite(math.fsum(v for v in floats if v is not None)):
            return floats, problems
    except OverflowError:
        pass  # finite values whose sum does not fit: look at each
    why = "is NaN or an infinity, which JSON cannot carry"
    problems.update({p: why for p, v in enumerate(floats)
                     if v is not None and not math.isfinite(v)})
    return floats, problems


def _texts(values: list[Any]) -> tuple[list[Any], Problems]:
    texts = values
    if not _PLAIN_TEXT.issuperset(map(type, values)):
        # Email and URL types validate to objects; an Enum default's str() is its name.
        texts = [v if v is None or v.__class__ is str else _text(v) for v in values]
    if "\x00" not in "".join(filter(None, texts)):
        return texts, {}
    # PostgreSQL's text cannot hold NUL; refused on every backend, so that a source imports
    # alike on SQLite and PostgreSQL.
    why = "holds a NUL character, which PostgreSQL text cannot store"
    return texts, {p: why for p, v in enumerate(texts) if v is not None and "\x00" in v}


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def _plain_choices(choices: tuple[Any, ...]) -> bool:
    return bool(choices) and (
        all(isinstance(c, str) for c in choices)
        or all(isinstance(c, int) and not isinstance(c, bool) for c in choices)
    )


def _choice_value(value: Any) -> Any:
    """A choice of text or whole numbers as its column stores it: its value."""
    return value.value if isinstance(value, enum.Enum) else value


def _choices(values: list[Any]) -> tuple[list[Any], Problems]:
    """`_choice_value` of each value, worked out once per distinct value (a choice column
    holds a few)."""
    distinct = set(values)
    if bool in set(map(type, distinct)):  # True is 1 as a key: no sharing
        return [_choice_value(v) for v in values], {}
    stored = {value: _choice_value(value) for value in distinct}
    return list(map(stored.__getitem__, values)), {}


def _decimals(places: int | None) -> Converter:
    """Decimals to `canonical_decimal`'s spelling; a column whose every value already has
    `places` places (what a model with `decimal_places` usually gives) is left as it is."""
    def convert(values: list[Any]) -> tuple[list[Any], Problems]:
        if places is not None and _at_places([v for v in values if v is not None], places):
            return values, {}
        return _per_value(values, lambda v: fast_canonical_decimal(v, places))

    return convert


def _at_places(values: list[decimal.Decimal], places: int) -> bool:
    """Whether each value is finite with exactly `places` places and short enough that
    `canonical_decimal` gives it back unchanged (quantizing to its own exponent). A decimal's
    text without an exponent has as many digits after its point as its exponent says."""
    texts = list(map(str, values))
    if max(map(len, texts), default=0) > MAX_DECIMAL_DIGITS:
        return False
    pattern = _PLACES.get(places)
    if pattern is None:
        point = rf"\.[0-9]{{{places}}}" if places else ""
        pattern = _PLACES[places] = re.compile(rf"(?:-?[0-9]+{point}\n)*")
    return pattern.fullmatch("\n".join(texts) + "\n") is not None


#: places -> lines of decimals written with exactly that many places.
_PLACES: dict[int, re.Pattern[str]] = {}
_PLAIN_TEXT = frozenset({str, type(None)})

#: Room for every decimal the fast path takes, with places to spare.
_WIDE = decimal.Context(prec=4 * MAX_DECIMAL_DIGITS)
_QUANTUMS: dict[int, decimal.Decimal] = {}


def fast_canonical_decimal(value: decimal.Decimal, places: int | None) -> decimal.Decimal:
    """`canonical_decimal(value, places)` without its digit counting for ordinary numbers:
    a finite decimal whose plain text is short has few digits written out, before and after
    rounding to `places`. Anything else takes the full path (a test compares the two)."""
    text = str(value)
    if "E" in text or "N" in text or "n" in text or len(text) + (places or 0) >= MAX_DECIMAL_DIGITS:
        return canonical_decimal(value, places)
    if places is not None and _has_places(text, places):
        return value  # already written with `places` places: quantizing changes nothing
    context = decimal.getcontext()
    if places is not None:
        quantum = _QUANTUMS.get(places)
        if quantum is None:
            quantum = _QUANTUMS[places] = decimal.Decimal(1).scaleb(-places)
        return value.quantize(quantum, rounding=context.rounding, context=_WIDE)
    if value == value.to_integral_value():
        return value.quantize(decimal.Decimal(1), rounding=context.rounding, context=_WIDE)
    return value.normalize(_WIDE)


def _has_places(text: str, places: int) -> bool:
    """Whether a decimal's plain text has exactly `places` digits after its point."""
    point = text.find(".")
    return point == -1 if places == 0 else 0 <= point == len(text) - places - 1


# -- COPY text ------------------------------------------------------------------------------


def _encoder(records: RecordTable, name: str) -> Encoder:
    field_type = records.field_types[name]
    kind = field_type.kind
    if kind is FieldKind.STRING or (kind is FieldKind.CHOICE and _plain_choices(field_type.choices)
                                    and isinstance(field_type.choices[0], str)):
        return _encode_texts
    if kind in (FieldKind.INTEGER, FieldKind.DECIMAL, FieldKind.UUID, FieldKind.CHOICE) and not (
        kind is FieldKind.CHOICE and not _plain_choices(field_type.choices)
    ):
        return _encode_with(str)
    if kind is FieldKind.FLOAT:
        return _encode_with(float.__repr__)
    if kind is FieldKind.BOOLEAN:
        return lambda values: list(map(_BOOLEANS.__getitem__, values))
    if kind in (FieldKind.DATE, FieldKind.DATETIME, FieldKind.TIME):
        return _encode_with(operator.methodcaller("isoformat"))
    if kind is FieldKind.CHOICE:
        # Mixed choices: their column's canonical JSON text (EncodedJSON).
        return lambda values: _encode_texts(
            [None if v is None else json.dumps(v, sort_keys=True) for v in values]
        )
    return lambda values: _encode_texts([None if v is None else json.dumps(v) for v in values])


def _encode_with(step: Callable[[Any], str]) -> Encoder:
    def encode(values: list[Any]) -> list[str]:
        if _has_none(values):
            return [_NULL if v is None else step(v) for v in values]
        return list(map(step, values))

    return encode


def _has_none(values: list[Any]) -> bool:
    # `None in values` compares every value with None, which costs decimals a conversion.
    return type(None) in set(map(type, values))


def _encode_texts(values: list[Any]) -> list[str]:
    joined = "".join(filter(None, values))
    if "\x00" in joined:
        raise ValueError("text holds a NUL character")  # `convert` rejects these rows first
    if not any(special in joined for special in _SPECIAL):
        if not _has_none(values):
            return values
        return [_NULL if v is None else v for v in values]
    return [_NULL if v is None else v.translate(_ESCAPES) for v in values]
