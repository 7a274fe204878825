"""Safe field names for source names that are not identifiers.

A field name becomes a Pydantic attribute and an SQL column, so the registry takes only
`[A-Za-z][A-Za-z0-9_]*`, up to 63 characters, not one of the columns every record has (`id`,
`version`, ...), not starting with `model_`. Beyond what it requires we also write names in
snake_case ("Miles per Gallon" -> `miles_per_gallon`, "Year" -> `year`) and keep Python
keywords and SQL reserved words out (`class` -> `class_`, `order` -> `order_`), since either
makes the field awkward to use from code or hand-written SQL. The map from source name to
field is kept in the inspection.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["MAX_FIELD_NAME", "safe_field_names", "safe_model_name"]

MAX_FIELD_NAME = 63
#: Columns every record table has; a source column of that name is prefixed with `source_`.
SYSTEM_COLUMNS = frozenset(
    {"id", "version", "created_at", "updated_at", "created_by", "updated_by"}
)
#: Words reserved in standard SQL and the dialects we reach that real files use as headers.
SQL_RESERVED = frozenset(
    {
        "all", "and", "any", "as", "asc", "between", "by", "case", "cast", "check", "column",
        "constraint", "create", "cross", "current", "default", "delete", "desc", "distinct",
        "drop", "else", "end", "except", "exists", "false", "fetch", "for", "foreign", "from",
        "full", "grant", "group", "having", "in", "index", "inner", "insert", "intersect",
        "into", "is", "join", "key", "left", "like", "limit", "not", "null", "of", "offset",
        "on", "or", "order", "outer", "primary", "references", "right", "row", "rows", "select",
        "set", "table", "then", "to", "true", "union", "unique", "update", "user", "using",
        "values", "when", "where", "with",
    }
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def safe_field_names(source_names: Iterable[str]) -> dict[str, str]:
    """source name -> a unique safe field name, in the order given."""
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for position, source in enumerate(source_names, start=1):
        name = _unique(_safe(source) or f"field_{position}", taken)
        taken.add(name)
        mapping[source] = name
    return mapping


def safe_model_name(text: str) -> str:
    """A model name from a file or table name: `cars-2024.csv` -> `Cars2024`."""
    words = _NOT_WORD.split(_ascii(_CAMEL.sub(" ", text)).lower())
    name = "".join(word.capitalize() for word in words if word)
    if not name or not name[0].isalpha():
        name = "Model" + name
    return name[: 63 - len("dmr_r_")]


def _safe(source: str) -> str:
    words = _NOT_WORD.split(_ascii(_CAMEL.sub(" ", str(source))).lower())
    name = "_".join(word for word in words if word)
    if not name:
        return ""
    if not name[0].isalpha():
        name = "field_" + name
    if name in SYSTEM_COLUMNS or name.startswith("model_"):
        name = "source_" + name
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in SQL_RESERVED:
        name += "_"
    return name[:MAX_FIELD_NAME].rstrip("_") if len(name) > MAX_FIELD_NAME else name


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    for number in range(2, 10_000):
        suffix = f"_{number}"
        candidate = name[: MAX_FIELD_NAME - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: fewer than 10,000 columns share a name")
