"""What kind of value a model field holds, read from its Pydantic annotation.

Storage picks a column type from the kind and the UI picks a widget from it, so both agree on
what a field is. `Optional[X]` is X, nullable; an Enum or a Literal is a choice; lists, sets,
dicts, tuples, nested models and unions of several types are JSON.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import AnyUrl, BaseModel, EmailStr
from pydantic.fields import FieldInfo

__all__ = ["FieldKind", "FieldType", "classify", "bounds_of"]


class FieldKind(enum.Enum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    UUID = "uuid"
    CHOICE = "choice"
    JSON = "json"


@dataclass(frozen=True)
class FieldType:
    kind: FieldKind
    nullable: bool = False
    #: For CHOICE: the allowed values.
    choices: tuple[Any, ...] = ()
    #: For STRING: "email" or "url" when the type says so.
    string_format: str | None = None
    #: For a list or set: the type of its items.
    items: FieldType | None = None
    #: For JSON: "list", "set", "dict", "model", "tuple" or "any".
    container: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_SCALARS: dict[Any, FieldKind] = {
    str: FieldKind.STRING,
    bool: FieldKind.BOOLEAN,
    int: FieldKind.INTEGER,
    float: FieldKind.FLOAT,
    decimal.Decimal: FieldKind.DECIMAL,
    datetime.datetime: FieldKind.DATETIME,
    datetime.date: FieldKind.DATE,
    datetime.time: FieldKind.TIME,
    uuid.UUID: FieldKind.UUID,
}


def classify(annotation: Any) -> FieldType:
    """The kind of value an annotation describes."""
    annotation, nullable = _strip_optional(annotation)
    found = _classify_bare(annotation)
    return FieldType(
        kind=found.kind,
        nullable=nullable,
        choices=found.choices,
        string_format=found.string_format,
        items=found.items,
        container=found.container,
    )


def bounds_of(info: FieldInfo) -> dict[str, Any]:
    """The bounds in a field's metadata: ge, gt, le, lt, min/max_length, multiple_of."""
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length", "multiple_of"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    return found


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if annotation is type(None):
        return Any, True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            inner, inner_nullable = _strip_optional(args[0])
            return inner, nullable or inner_nullable
        return annotation, nullable
    return annotation, False


def _classify_bare(annotation: Any) -> FieldType:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return FieldType(FieldKind.CHOICE, choices=typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return FieldType(FieldKind.JSON, container="any")
    if origin in (list, set, frozenset, tuple, dict) or annotation in (list, set, dict, tuple):
        return _classify_container(annotation, origin or annotation)
    if isinstance(annotation, type):
        return _classify_class(annotation)
    return FieldType(FieldKind.JSON, container="any")


def _classify_container(annotation: Any, origin: Any) -> FieldType:
    args = typing.get_args(annotation)
    if origin is dict:
        return FieldType(FieldKind.JSON, container="dict")
    if origin is tuple:
        return FieldType(FieldKind.JSON, container="tuple")
    items = classify(args[0]) if args else None
    container = "list" if origin is list else "set"
    return FieldType(FieldKind.JSON, container=container, items=items)


def _classify_class(cls: type) -> FieldType:
    if issubclass(cls, enum.Enum):
        return FieldType(FieldKind.CHOICE, choices=tuple(member.value for member in cls))
    if issubclass(cls, BaseModel):
        return FieldType(FieldKind.JSON, container="model")
    if cls is EmailStr or _is_named(cls, "EmailStr"):
        return FieldType(FieldKind.STRING, string_format="email")
    if issubclass(cls, AnyUrl) or _is_named(cls, "Url"):
        return FieldType(FieldKind.STRING, string_format="url")
    for scalar, kind in _SCALARS.items():
        # bool is an int and datetime a date: the dict lists the narrower type first.
        if issubclass(cls, scalar):
            return FieldType(kind)
    return FieldType(FieldKind.JSON, container="any")


def _is_named(cls: type, suffix: str) -> bool:
    return cls.__module__.startswith("pydantic") and cls.__name__.endswith(suffix)
