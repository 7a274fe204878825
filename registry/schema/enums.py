"""Enum classes rebuilt from the values a schema lists."""

from __future__ import annotations

import enum
from typing import Any

#: Names the functional Enum API refuses for a member (besides _sunder_ and __dunder__ names).
_RESERVED_MEMBER_NAMES = frozenset({"mro"})


def enum_from_values(
    title: str, values: list[Any], plain: bool, description: str | None
) -> type[enum.Enum]:
    """An Enum named `title` with members for `values`: a plain Enum, or one mixed with the
    values' type (an IntEnum-like class takes the text "1" where a plain one refuses it).

    Raises `TypeError` or `ValueError` when Python cannot build it."""
    mixin = None if plain else type(values[0])
    created = enum.Enum(  # type: ignore[misc]
        title, list(zip(member_names(values), values, strict=True)), type=mixin
    )
    created.__doc__ = description
    return created


def member_names(values: list[Any]) -> list[str]:
    """Unique member names: a value that can name its member does; the others get VALUE_<i>."""
    own = {v for v in values if _names_itself(v)}
    names: list[str] = []
    for index, value in enumerate(values):
        name = value if value in own else f"VALUE_{index}"
        while name in names or (name != value and name in own):  # e.g. a value "VALUE_1"
            name += "_"
        names.append(name)
    return names


def _names_itself(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.isidentifier()
        and not value.startswith("_")
        and value not in _RESERVED_MEMBER_NAMES
    )
