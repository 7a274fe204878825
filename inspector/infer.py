"""Column inference: from sampled values to a `FieldSpec` and its provenance.

The rules, in the order they apply to a column of text:

1. Null values (the resource's, by default `formats.NULL_VALUES`, the empty string among them)
   make the field nullable; they count in `null_fraction` and nowhere else.
2. Each candidate type counts the values it reads: boolean, integer, decimal/number, date,
   date-time, time, UUID, email, URL (each date kind tries the formats of `formats` and keeps
   the one that reads most values). A number with a leading zero ("02134", "007") vetoes every
   numeric type: the column holds codes, and stays text.
3. The first candidate that reads every value wins. Otherwise the candidate that reads the most
   wins if its share reaches `confidence` (the rest are named in a warning: an import rejects
   them); below that the column widens to string, with a warning.
4. Fixed-point text keeps its digits as a decimal when every value has the same number of
   places (money) or more digits than a float keeps; otherwise it is a number.
5. Text with few distinct values (at most `enum_max_distinct`, each seen `enum_min_rows_per_value`
   times on average) becomes an enum.

JSON values keep their JSON types (integers with floats become numbers, objects are inferred
field by field, arrays from their items; a column mixing types is `any`, with a warning), and
SQL driver values map by their Python type.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AnyUrl, EmailStr, TypeAdapter, ValidationError

from .formats import (
    BOOLEAN_TOKENS,
    DATE_FORMATS,
    DATETIME_FORMATS,
    EMAIL_PATTERN,
    ISO8601,
    NULL_VALUES,
    TIME_FORMATS,
    URL_PATTERN,
    UUID_PATTERN,
    has_zone,
    parse_text,
)
from .names import safe_field_names
from .spec import FieldSpec

__all__ = ["ColumnResult", "InferenceOptions", "infer_column", "infer_columns"]

Examples = Literal["safe", "all", "none"]
#: Values of these kinds, and fields whose names match, are not shown as examples.
#: Matched against whole words of the snake_case name, so "author" and "passenger" are not.
_SENSITIVE_NAME = re.compile(
    r"(^|_)(pass(word|wd|phrase)?|pwd|tokens?|secrets?|api_?keys?|auth(entication|orization)?"
    r"|credentials?|private_?keys?|ssn|e_?mails?|salt)(_|$)"
)
_SECRET_VALUE = re.compile(r"eyJ[\w-]{10,}\.|^(sk|pk|ghp|gho|xox[bpa])[_-]|^AKIA[0-9A-Z]{12}")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE_LIKE = re.compile(r"[0-9A-Za-z ,./:+-]{4,40}")
_INT64 = 2**63
#: Digits a float keeps exactly; a fixed-point value with more is a decimal.
_FLOAT_DIGITS = 15
#: Distinct values checked with Pydantic's own validators (emails, URLs) before trusting them.
_VALIDATED = 200
_EXAMPLES = 3
_EXAMPLE_LENGTH = 80
_EMAIL_ADAPTER: TypeAdapter[Any] = TypeAdapter(EmailStr)
_URL_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyUrl)


@dataclass(frozen=True)
class InferenceOptions:
    """How inference decides; the defaults are what `inspector.inspect` uses."""

    #: Share of a column's values a type must read to be kept (else the column widens).
    confidence: float = 0.95
    enum_max_distinct: int = 10
    enum_min_rows_per_value: float = 3.0
    enum_max_length: int = 64
    examples: Examples = "safe"
    null_values: tuple[str, ...] = NULL_VALUES


@dataclass
class ColumnResult:
    """A column's proposed field, its provenance facts and the warnings about it."""

    spec: FieldSpec
    facts: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    kind: str
    matched: int
    format: str | None = None
    failures: list[str] = field(default_factory=list)


def infer_columns(
    columns: Mapping[str, list[Any]], options: InferenceOptions
) -> dict[str, ColumnResult]:
    """source column -> result, for columns of equally many sampled values."""
    return {name: infer_column(name, values, options) for name, values in columns.items()}


def infer_column(name: str, values: list[Any], options: InferenceOptions) -> ColumnResult:
    """The field a column of sampled values (None where a row lacks it) proposes."""
    nulls = frozenset(options.null_values)
    present = [value for value in values if not _is_null(value, nulls)]
    rows = len(values)
    result = _infer_present(name, present, options)
    result.spec.nullable = result.spec.nullable or len(present) < rows
    result.facts["null_fraction"] = round((rows - len(present)) / rows, 6) if rows else None
    result.facts["distinct"] = _distinct(present)
    result.facts["unique"] = bool(present) and len(present) == rows == result.facts["distinct"]
    examples = _examples(name, present, result.spec.kind, options.examples)
    if examples is not None:
        result.facts["examples"] = examples
    elif options.examples == "safe":  # a range shows values too
        result.facts.pop("min", None)
        result.facts.pop("max", None)
    return result


def _is_null(value: Any, nulls: frozenset[str]) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in nulls)


def _distinct(values: list[Any]) -> int:
    return len({_hashable(value) for value in values})


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(value)
    return value


def _infer_present(name: str, present: list[Any], options: InferenceOptions) -> ColumnResult:
    if not present:
        return ColumnResult(
            FieldSpec("string", nullable=True),
            {"inferred_type": "string", "confidence": None},
            [f"Field {name!r} has no values in the sample; it is read as text."],
        )
    kinds = {_json_kind(value) for value in present}
    if kinds == {"string"}:
        return _infer_text(name, Counter(value.strip() for value in present), options)
    if len(kinds) == 1:
        return _infer_native(name, kinds.pop(), present, options)
    if kinds == {"integer", "number"}:
        return _infer_native(name, "number", present, options)
    return ColumnResult(
        FieldSpec("any"),
        {"inferred_type": "any", "confidence": 1.0},
        [f"Field {name!r} mixes JSON types ({', '.join(sorted(kinds))}); it accepts any value."],
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "datetime_tz" if value.tzinfo is not None else "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    if isinstance(value, uuid.UUID):
        return "uuid"
    return type(value).__name__


# --------------------------------------------------------------------------- native values


def _infer_native(
    name: str, kind: str, present: list[Any], options: InferenceOptions
) -> ColumnResult:
    if kind == "object":
        return _infer_object(name, present, options)
    if kind == "array":
        return _infer_array(name, present, options)
    if kind not in ("boolean", "integer", "number", "decimal", "date", "datetime",
                    "datetime_tz", "time", "uuid"):  # fmt: skip
        return ColumnResult(
            FieldSpec("any"),
            {"inferred_type": "any", "confidence": 1.0},
            [f"Field {name!r} holds {kind} values, which no field type stores; it accepts any."],
        )
    if kind == "integer" and any(not -_INT64 <= value < _INT64 for value in present):
        kind = "decimal"  # wider than the 64-bit column an integer field gets
    facts: dict[str, Any] = {"inferred_type": kind, "confidence": 1.0}
    if kind in ("integer", "number", "decimal", "date", "datetime", "datetime_tz", "time"):
        facts.update(_range(present))
    return ColumnResult(FieldSpec(kind), facts)


def _infer_object(name: str, present: list[Any], options: InferenceOptions) -> ColumnResult:
    keys: dict[str, None] = {}
    for value in present:
        keys.update(dict.fromkeys(value))
    facts: dict[str, Any] = {"inferred_type": "object", "confidence": 1.0}
    if not keys or safe_field_names(keys) != {key: key for key in keys}:
        warning = (
            f"Field {name!r} holds objects whose keys are not all field names; "
            "it is kept as a free-form object."
        )
        return ColumnResult(FieldSpec("object"), facts, [warning] if keys else [])
    nested = infer_columns({key: [value.get(key) for value in present] for key in keys}, options)
    warnings = [warning for result in nested.values() for warning in result.warnings]
    properties = {key: result.spec for key, result in nested.items()}
    return ColumnResult(FieldSpec("object", properties=properties), facts, warnings)


def _infer_array(name: str, present: list[Any], options: InferenceOptions) -> ColumnResult:
    items = [item for value in present for item in value]
    facts: dict[str, Any] = {"inferred_type": "array", "confidence": 1.0}
    if not items:
        return ColumnResult(FieldSpec("array"), facts)
    item = infer_column(f"{name}[]", items, _without_enums(options))
    return ColumnResult(FieldSpec("array", items=item.spec), facts, item.warnings)


def _without_enums(options: InferenceOptions) -> InferenceOptions:
    return InferenceOptions(
        confidence=options.confidence,
        enum_max_distinct=0,
        examples="none",
        null_values=options.null_values,
    )


def _range(values: Iterable[Any]) -> dict[str, Any]:
    ordered = [value for value in values if not (isinstance(value, float) and math.isnan(value))]
    if not ordered:
        return {}
    try:
        low, high = min(ordered), max(ordered)
    except TypeError:  # aware and naive datetimes do not compare
        return {}
    return {"min": _json_value(low), "max": _json_value(high)}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


# --------------------------------------------------------------------------- text


def _infer_text(name: str, counts: Counter[str], options: InferenceOptions) -> ColumnResult:
    total = sum(counts.values())
    candidates = _text_candidates(counts)
    chosen = next((found for found in candidates if found.matched == total), None)
    warnings: list[str] = []
    if chosen is None:
        best = max(candidates, key=lambda found: found.matched, default=None)
        share = best.matched / total if best else 0.0
        if best is not None and share >= options.confidence:
            chosen = best
            warnings.append(
                f"Field {name!r}: {total - best.matched} of {total} sampled values do not read "
                f"as {best.kind} (e.g. {best.failures[:3]}); an import rejects those rows."
            )
        else:
            if best is not None and best.matched:
                warnings.append(
                    f"Field {name!r}: only {share:.0%} of sampled values read as {best.kind} "
                    f"(below the confidence threshold {options.confidence:.0%}); it is read "
                    "as text."
                )
            chosen = _Candidate("string", total)
    result = _text_result(name, chosen, counts, total, options)
    result.warnings[:0] = warnings
    return result


def _text_candidates(counts: Counter[str]) -> list[_Candidate]:
    numeric_allowed = not any(_LEADING_ZERO.match(value) for value in counts)
    finders: list[Callable[[Counter[str]], _Candidate | None]] = [_booleans]
    if numeric_allowed:
        finders += [_integers, _decimals]
    finders += [_dates, _datetimes, _times, _uuids, _emails, _urls]
    return [found for finder in finders if (found := finder(counts)) is not None]


def _matching(kind: str, counts: Counter[str], accepts: Callable[[str], bool]) -> _Candidate:
    found = _Candidate(kind, 0)
    for value, count in counts.items():
        if accepts(value):
            found.matched += count
        elif len(found.failures) < _EXAMPLES:
            found.failures.append(value[:_EXAMPLE_LENGTH])
    return found


def _booleans(counts: Counter[str]) -> _Candidate:
    return _matching("boolean", counts, lambda value: value.lower() in BOOLEAN_TOKENS)


def _integers(counts: Counter[str]) -> _Candidate:
    def accepts(value: str) -> bool:
        return bool(_INTEGER.fullmatch(value)) and -_INT64 <= int(value) < _INT64

    return _matching("integer", counts, accepts)


def _decimals(counts: Counter[str]) -> _Candidate:
    found = _matching("decimal", counts, lambda value: bool(_NUMBER.fullmatch(value)))
    numbers = [value for value in counts if _NUMBER.fullmatch(value)]
    if any("e" in value.lower() for value in numbers):
        found.kind = "number"
        return found
    places = {len(value.split(".", 1)[1]) if "." in value else 0 for value in numbers}
    longest = max((sum(char.isdigit() for char in value) for value in numbers), default=0)
    if len(places) != 1 and longest <= _FLOAT_DIGITS:
        found.kind = "number"
    return found


def _best_format(
    kind: str, counts: Counter[str], formats: tuple[str, ...], gate: Callable[[str], bool]
) -> _Candidate | None:
    """The format that reads the most values (the first of equals), or None if none reads any."""
    values = [value for value in counts if gate(value)]
    if not values:
        return None
    best: _Candidate | None = None
    for fmt in formats:
        probe = values[:50]
        if sum(_reads(kind, fmt, value) for value in probe) * 2 < len(probe):
            continue  # reads fewer than half of the first values: not this column's format
        found = _matching(kind, counts, functools.partial(_reads, kind, fmt))
        found.format = fmt
        if best is None or found.matched > best.matched:
            best = found
    return best


def _reads(kind: str, fmt: str, value: str) -> bool:
    try:
        parse_text(kind, fmt, value)
        return True
    except ValueError:
        return False


def _date_like(value: str) -> bool:
    return bool(_DATE_LIKE.fullmatch(value)) and any(char.isdigit() for char in value)


def _dates(counts: Counter[str]) -> _Candidate | None:
    found = _best_format("date", counts, DATE_FORMATS, _date_like)
    if found is not None and found.format == "%Y-%m-%d":
        found.format = ISO8601
    return found


def _datetimes(counts: Counter[str]) -> _Candidate | None:
    found = _best_format("datetime", counts, DATETIME_FORMATS, _date_like)
    if found is not None and found.format == ISO8601:
        readable = [value for value in counts if _reads("datetime", ISO8601, value)]
        if readable and all(has_zone(value) for value in readable):
            found.kind = "datetime_tz"
    return found


def _times(counts: Counter[str]) -> _Candidate | None:
    return _best_format("time", counts, TIME_FORMATS, lambda value: ":" in value)


def _uuids(counts: Counter[str]) -> _Candidate:
    return _matching("uuid", counts, lambda value: bool(UUID_PATTERN.fullmatch(value)))


def _emails(counts: Counter[str]) -> _Candidate:
    return _validated("email", counts, EMAIL_PATTERN, _EMAIL_ADAPTER)


def _urls(counts: Counter[str]) -> _Candidate:
    return _validated("url", counts, URL_PATTERN, _URL_ADAPTER)


def _validated(
    kind: str, counts: Counter[str], pattern: re.Pattern[str], adapter: TypeAdapter[Any]
) -> _Candidate:
    """Values the pattern matches, the first of them confirmed by Pydantic's validator, so
    that the type proposed is one the model accepts."""
    checked = 0

    def accepts(value: str) -> bool:
        nonlocal checked
        if not pattern.fullmatch(value):
            return False
        if checked >= _VALIDATED:
            return True
        checked += 1
        try:
            adapter.validate_python(value)
            return True
        except ValidationError:
            return False

    return _matching(kind, counts, accepts)


def _text_result(
    name: str, chosen: _Candidate, counts: Counter[str], total: int, options: InferenceOptions
) -> ColumnResult:
    facts: dict[str, Any] = {
        "inferred_type": chosen.kind,
        "confidence": round(chosen.matched / total, 6),
    }
    if chosen.format is not None:
        facts["format"] = chosen.format
    warnings: list[str] = []
    spec = FieldSpec(chosen.kind)
    if chosen.kind == "string":
        facts["max_length"] = max(len(value) for value in counts)
        if _is_enum(counts, total, options):
            spec = FieldSpec("enum", enum=sorted(counts))
            facts["inferred_type"] = "enum"
    else:
        facts.update(_range(_parsed(chosen, counts)))
    if chosen.format in ("%m/%d/%Y", "%m/%d/%y") and _fits("%d/%m/%Y", counts, chosen):
        warnings.append(
            f"Field {name!r}: every date fits both month-first and day-first; read as "
            f"{chosen.format}. Edit the format in the inspection if the days come first."
        )
    return ColumnResult(spec, facts, warnings)


def _parsed(chosen: _Candidate, counts: Counter[str]) -> list[Any]:
    values = []
    for value in counts:
        try:
            values.append(parse_text(chosen.kind, chosen.format, value))
        except (ValueError, ArithmeticError):
            continue
    return values


def _fits(fmt: str, counts: Counter[str], chosen: _Candidate) -> bool:
    day_first = fmt if chosen.format == "%m/%d/%Y" else "%d/%m/%y"
    return all(_reads("date", day_first, value) for value in counts)


def _is_enum(counts: Counter[str], total: int, options: InferenceOptions) -> bool:
    distinct = len(counts)
    return (
        2 <= distinct <= options.enum_max_distinct
        and total >= options.enum_min_rows_per_value * distinct
        and all(len(value) <= options.enum_max_length for value in counts)
    )


# --------------------------------------------------------------------------- examples


def _examples(name: str, present: list[Any], kind: str, mode: Examples) -> list[Any] | None:
    """Up to three distinct values, or None when they are not to be shown."""
    if mode == "none":
        return None
    if mode == "safe" and (kind == "email" or _looks_sensitive(name)):
        return None
    found: list[Any] = []
    seen: set[Any] = set()
    for value in present:
        key = _hashable(value)
        if key in seen:
            continue
        seen.add(key)
        found.append(_example(value))
        if len(found) == _EXAMPLES:
            break
    if mode == "safe" and any(_looks_secret(value) for value in found):
        return None
    return found


def _looks_sensitive(name: str) -> bool:
    words = safe_field_names([name])[name]  # snake_case: "AuthToken" -> "auth_token"
    return bool(_SENSITIVE_NAME.search(words))


def _example(value: Any) -> Any:
    value = _json_value(value)
    if isinstance(value, str) and len(value) > _EXAMPLE_LENGTH:
        return value[:_EXAMPLE_LENGTH] + "..."
    if isinstance(value, dict | list):
        return _json_value(value) if len(repr(value)) <= _EXAMPLE_LENGTH else None
    return value


def _looks_secret(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return bool(_SECRET_VALUE.search(value)) or (
        bool(_TOKEN_LIKE.fullmatch(value)) and len(set(value)) > 16
    )
