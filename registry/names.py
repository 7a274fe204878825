"""Rules for names that become SQL identifiers (Invariant 7).

Model names become table names and field names become column names. SQLAlchemy quotes every
identifier it emits, so an SQL keyword such as `order` is a legal field; what we refuse is
anything that is not a plain identifier, anything longer than PostgreSQL keeps (63 bytes, minus
our table prefix), names that clash with the columns every record table has, and names that
Pydantic reserves.
"""

from __future__ import annotations

import re

from .errors import InvalidName

__all__ = [
    "MAX_FIELD_NAME",
    "MAX_MODEL_NAME",
    "SYSTEM_COLUMNS",
    "TABLE_PREFIX",
    "table_name_for",
    "validate_field_name",
    "validate_model_name",
]

TABLE_PREFIX = "dmr_r_"
MAX_MODEL_NAME = 63 - len(TABLE_PREFIX)
MAX_FIELD_NAME = 63
SYSTEM_COLUMNS = frozenset(
    {"id", "version", "created_at", "updated_at", "created_by", "updated_by"}
)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def validate_model_name(name: object) -> str:
    """Return the name if it can name a model; raises `InvalidName`."""
    _check_identifier("Model", name, MAX_MODEL_NAME)
    assert isinstance(name, str)
    return name


def validate_field_name(model: str, name: object) -> str:
    """Return the name if it can name a field of `model`; raises `InvalidName`."""
    _check_identifier("Field", name, MAX_FIELD_NAME)
    assert isinstance(name, str)
    if name.lower() in SYSTEM_COLUMNS:
        raise InvalidName(
            f"Field {name!r} of model {model!r} clashes with a column every record has "
            f"({', '.join(sorted(SYSTEM_COLUMNS))}).",
            model=model,
            field=name,
        )
    if name.startswith("model_"):
        raise InvalidName(
            f"Field {name!r} of model {model!r} starts with 'model_', which Pydantic reserves.",
            model=model,
            field=name,
        )
    return name


def table_name_for(model_name: str) -> str:
    """The record table of a model. Lower case, so model names are unique regardless of case."""
    return TABLE_PREFIX + model_name.lower()


def _check_identifier(kind: str, name: object, limit: int) -> None:
    if not isinstance(name, str):
        raise InvalidName(f"{kind} name must be a string, not {type(name).__name__}.")
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidName(
            f"{kind} name {name!r} is not an identifier: it must start with a letter and "
            "hold only letters, digits and underscores.",
            name=name,
        )
    if len(name) > limit:
        raise InvalidName(
            f"{kind} name {name[:20]!r}... is {len(name)} characters long; the limit is {limit}.",
            name=name,
        )
