"""How text values are read as typed values: the formats inference finds and imports use.

Inference records, per field, an `inferred_type` and (for dates and times) the `format` the
values were written in: a `strptime` pattern such as `%m/%d/%Y`, or `iso8601`. `parse_text`
reads one value with them, and `RowParser` reads whole rows, so an import parses exactly the way
the inspection saw the data.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "BOOLEAN_TOKENS",
    "DATETIME_FORMATS",
    "DATE_FORMATS",
    "ISO8601",
    "NULL_VALUES",
    "TIME_FORMATS",
    "RowParser",
    "parse_text",
]

ISO8601 = "iso8601"
#: Text read as "no value" unless a resource's options say otherwise. "NA" and "-" are left out
#: on purpose: they are also real codes (Namibia, North America, a minus sign).
NULL_VALUES: tuple[str, ...] = ("", "null", "NULL", "Null", "None", "N/A", "n/a", "#N/A", "NaN")
BOOLEAN_TOKENS: dict[str, bool] = {
    "true": True, "false": False, "yes": True, "no": False,
    "t": True, "f": False, "y": True, "n": False,
}  # fmt: skip
#: Date formats tried, in order of preference: when values fit two (every day below 13),
#: month-first wins, as in the files most often met, and a warning says so.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%m-%d-%Y", "%d-%m-%Y",
    "%b %d %Y", "%b %d, %Y", "%d %b %Y", "%B %d %Y", "%B %d, %Y", "%d %B %Y", "%d-%b-%Y",
    "%d-%b-%y", "%m/%d/%y", "%d/%m/%y", "%Y.%m.%d",
)  # fmt: skip
DATETIME_FORMATS: tuple[str, ...] = (
    ISO8601, "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%b %d %Y %H:%M:%S", "%d %b %Y %H:%M:%S",
)  # fmt: skip
TIME_FORMATS: tuple[str, ...] = (ISO8601, "%I:%M %p", "%I:%M:%S %p")

_INTEGER = re.compile(r"[+-]?\d+")
_FIXED_POINT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
)
_ISO_TIME = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_ZONE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$")
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
URL_PATTERN = re.compile(r"(https?|ftp)://[^\s/$.?#][^\s]*", re.IGNORECASE)


def parse_text(kind: str, fmt: str | None, text: str) -> Any:
    """`text` read as a value of `kind` written in `fmt`. Raises `ValueError` if it is not."""
    reader = _READERS.get(kind)
    return text if reader is None else reader(text.strip(), fmt)


def _integer(text: str, fmt: str | None) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _decimal(text: str, fmt: str | None) -> decimal.Decimal:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a decimal number")
    return decimal.Decimal(text)


def _number(text: str, fmt: str | None) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number")
    return float(text)


def _boolean(text: str, fmt: str | None) -> bool:
    try:
        return BOOLEAN_TOKENS[text.lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a boolean") from None


def _date(text: str, fmt: str | None) -> datetime.date:
    if fmt in (None, ISO8601, "%Y-%m-%d"):
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(f"{text!r} is not an ISO date")
        return datetime.date.fromisoformat(text)
    return _strptime(text, fmt).date()


def _datetime(text: str, fmt: str | None) -> datetime.datetime:
    if fmt in (None, ISO8601):
        if not _ISO_DATETIME.fullmatch(text):
            raise ValueError(f"{text!r} is not an ISO date and time")
        return datetime.datetime.fromisoformat(text)
    return _strptime(text, fmt)


def _time(text: str, fmt: str | None) -> datetime.time:
    if fmt in (None, ISO8601):
        if not _ISO_TIME.fullmatch(text):
            raise ValueError(f"{text!r} is not an ISO time")
        return datetime.time.fromisoformat(text)
    return _strptime(text, fmt).time()


#: Numeric directives a compiled pattern reads; any other directive goes to `strptime`.
_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})", "m": r"(?P<m>\d{1,2})", "d": r"(?P<d>\d{1,2})",
    "H": r"(?P<H>\d{1,2})", "M": r"(?P<M>\d{1,2})", "S": r"(?P<S>\d{1,2})", "y": r"(?P<y>\d{2})",
}  # fmt: skip
_COMPILED: dict[str, re.Pattern[str] | None] = {}


def _strptime(text: str, fmt: str) -> datetime.datetime:
    """`datetime.strptime`, several times faster for all-numeric formats such as `%m/%d/%Y`
    (an import reads millions of them): a compiled pattern and the constructor."""
    pattern = _COMPILED.get(fmt, ...)
    if pattern is ...:
        pattern = _COMPILED[fmt] = _compile(fmt)
    if pattern is None:
        return datetime.datetime.strptime(text, fmt)
    match = pattern.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} does not match {fmt!r}")
    parts = match.groupdict()
    year = int(parts["Y"]) if "Y" in parts else _century(int(parts["y"]))
    return datetime.datetime(
        year, int(parts["m"]), int(parts["d"]),
        int(parts.get("H") or 0), int(parts.get("M") or 0), int(parts.get("S") or 0),
    )  # fmt: skip


def _compile(fmt: str) -> re.Pattern[str] | None:
    pieces, position = [], 0
    while position < len(fmt):
        char = fmt[position]
        if char != "%":
            pieces.append(re.escape(char))
            position += 1
            continue
        directive = fmt[position + 1 : position + 2]
        if directive not in _DIRECTIVES or _DIRECTIVES[directive] in pieces:
            return None
        pieces.append(_DIRECTIVES[directive])
        position += 2
    pattern = re.compile("".join(pieces))
    has_year = "Y" in pattern.groupindex or "y" in pattern.groupindex
    return pattern if has_year and {"m", "d"} <= set(pattern.groupindex) else None


def _century(year: int) -> int:
    return year + (1900 if year >= 69 else 2000)  # as strptime's %y


def _uuid(text: str, fmt: str | None) -> uuid.UUID:
    if not UUID_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not a UUID")
    return uuid.UUID(text)


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str, str | None], str]:
    def read(text: str, fmt: str | None) -> str:
        if not pattern.fullmatch(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return read


def _json(text: str, fmt: str | None) -> Any:
    return json.loads(text)


_READERS: dict[str, Callable[[str, str | None], Any]] = {
    "integer": _integer,
    "decimal": _decimal,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "datetime_tz": _datetime,
    "time": _time,
    "uuid": _uuid,
    "email": _matching(EMAIL_PATTERN, "an email address"),
    "url": _matching(URL_PATTERN, "a URL"),
    "object": _json,
    "array": _json,
}


def has_zone(text: str) -> bool:
    return bool(_ZONE.search(text.strip()))


class RowParser:
    """Reads source rows into typed values, per field, as the inspection found them.

    Build it from the inspection's `provenance` (`{field: {"inferred_type", "format"?}}`, as
    stored with the model) and the source's null values. Text that is a null value becomes
    None; other text is parsed with the field's type and format. `read` also returns, per
    field, why a value does not parse (an import rejects such a row with that error); `parse`
    passes such a value on unchanged, for model validation to judge. Values that are not text
    (JSON numbers, SQL columns) pass unchanged.

        parser = RowParser(inspection.provenance, inspection.source.null_values)
        typed, errors = parser.read({"born": "01/31/2012", "code": "02134"})
    """

    def __init__(
        self,
        provenance: Mapping[str, Mapping[str, Any]],
        null_values: Iterable[str] | None = None,
    ) -> None:
        self.null_values = frozenset(NULL_VALUES if null_values is None else null_values)
        self._readers: dict[str, _FieldReader] = {}
        for field, facts in provenance.items():
            kind = str(facts.get("inferred_type"))
            reader = _READERS.get(kind)
            if reader is not None:
                self._readers[field] = _FieldReader(kind, facts.get("format"), reader)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RowParser:
        """The parser of an inspection document, or of the inspection stored with a model
        (`registry.inspections.stored_inspection(entry)`, which lacks only the schema)."""
        source = document.get("source") or {}
        options = source.get("options") or {} if isinstance(source, Mapping) else {}
        return cls(document.get("provenance") or {}, options.get("null_values"))

    def parse(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The row with its text values read; keys are kept as given."""
        return self.read(values)[0]

    def read(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(the row with its text values read, {field: why a value does not read}).

        Stricter than `parse`, which keeps only the first: a text value that does not read
        with its field's type and format is an error here, so that an import rejects the row
        rather than let model validation accept it another way (Pydantic reads "1" as a
        date-time, 1970-01-01 00:00:01). Such a value stays as it was in the row."""
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        nulls, readers = self.null_values, self._readers
        for name, value in values.items():
            if value.__class__ is not str:
                parsed[name] = value
                continue
            found = readers.get(name)
            if found is None:
                parsed[name] = None if value in nulls or value.strip() in nulls else value
                continue
            # Sources repeat values (dates, codes, flags): read each distinct text once.
            known = found.memo.get(value, _UNREAD)
            if known is _UNREAD:
                known = found.read(value, nulls)
            if known.__class__ is _Unreadable:
                errors[name] = known.reason
                parsed[name] = value
            else:
                parsed[name] = known
        return parsed, errors

    def parse_value(self, field: str, value: Any) -> Any:
        """One value read for `field` (unchanged when it does not read)."""
        return self.parse({field: value})[field]


_UNREAD: Any = object()
#: Distinct texts remembered per field; beyond it values are read without remembering.
_MEMO_SIZE = 50_000


class _Unreadable:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _FieldReader:
    """One field's reader with the values it has read."""

    __slots__ = ("fmt", "kind", "memo", "reader")

    def __init__(
        self, kind: str, fmt: str | None, reader: Callable[[str, str | None], Any]
    ) -> None:
        self.kind = kind
        self.fmt = fmt
        self.reader = reader
        self.memo: dict[str, Any] = {}

    def read(self, value: str, nulls: frozenset[str]) -> Any:
        text = value.strip()
        if text in nulls:
            found: Any = None
        else:
            try:
                found = self.reader(text, self.fmt)
            except (ValueError, ArithmeticError):
                written = f" written as {self.fmt}" if self.fmt else ""
                found = _Unreadable(f"{value[:80]!r} does not read as {self.kind}{written}.")
        if len(self.memo) < _MEMO_SIZE and not isinstance(found, dict | list):
            self.memo[value] = found
        return found
