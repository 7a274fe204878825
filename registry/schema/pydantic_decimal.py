"""Pydantic's own JSON Schema of a Decimal (read from other producers), and its digits.

Without vendor keywords Pydantic writes a Decimal as `anyOf: [number, string with a pattern]`,
the pattern spelling out its `max_digits` and `decimal_places`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .keywords import X_DECIMAL_PLACES, X_MAX_DIGITS

_PYDANTIC_DECIMAL_PREFIX = "^(?!^[-+.]*$)"


def is_pydantic_decimal(members: list[Any]) -> bool:
    """Whether an anyOf is Pydantic's default Decimal form: a number, or a digits-only string."""
    kinds = sorted(str(m.get("type")) for m in members if isinstance(m, Mapping))
    strings = [m for m in members if isinstance(m, Mapping) and m.get("type") == "string"]
    return (
        kinds == ["number", "string"]
        and set(strings[0]) <= {"type", "pattern"}
        and str(strings[0].get("pattern", "")).startswith(_PYDANTIC_DECIMAL_PREFIX)
    )


def digits_from_pattern(pattern: str) -> dict[str, int]:
    """max_digits and decimal_places, read back from the pattern Pydantic derives from them,
    as the vendor keywords that hold them."""
    found: dict[str, int] = {}
    total = re.search(r"\[\\d\.\]\{1,(\d+)\}", pattern)
    if total:
        found[X_MAX_DIGITS] = int(total.group(1)) - 1
    elif wholes := re.findall(r"\(\?:\\d\{0,(\d+)\}\|", pattern):
        # The last one, as a greedy `.*` before it would find; `findall` with a literal start
        # stays linear where that form was quadratic in the pattern's length.
        found[X_MAX_DIGITS] = int(wholes[-1])
    places = re.search(r"\\\.\??\\d\{0,(\d+)\}", pattern)
    if places:
        found[X_DECIMAL_PLACES] = int(places.group(1))
    return found
