"""Reading one keyword of a schema node, checked: what every builder of annotations needs.

A bad value is refused with `InvalidSchema` naming the model, the field and the keyword.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import annotated_types as at

from ..errors import InvalidSchema
from .keywords import BOUNDS, VALIDATING

#: Draft 4 wrote an exclusive bound as `"minimum": 5, "exclusiveMinimum": true`.
_DRAFT4_EXCLUSIVE: dict[str, type[at.BaseMetadata]] = {"minimum": at.Gt, "maximum": at.Lt}


class NodeReader:
    """Reads the keywords of one model's schema nodes; `path` names the field being read."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def refuse(self, field: str, reason: str) -> InvalidSchema:
        where = (
            f"Field {field!r} of model {self.model_name!r}"
            if field
            else f"Model {self.model_name!r}"
        )
        return InvalidSchema(f"{where} {reason}", model=self.model_name, field=field or None)

    def leftovers(self, path: str, node: Mapping[str, Any], consumed: Iterable[str]) -> None:
        unsupported = sorted(set(node) & VALIDATING - set(consumed) - {"nullable"})
        if unsupported:
            raise self.refuse(
                path,
                f"uses the JSON Schema keyword {unsupported[0]!r}, which changes validation and "
                "is not supported.",
            )

    def literal_values(self, path: str, values: Any) -> list[Any]:
        if not isinstance(values, list) or not values:
            raise self.refuse(path, "has an 'enum' that is not a non-empty list.")
        for value in values:
            if value is not None and not isinstance(value, str | int):
                raise self.refuse(
                    path,
                    f"allows the value {value!r}; only strings, integers, booleans and null can "
                    "be choices.",
                )
        distinct = {(type(value), value) for value in values}  # True and 1 are different choices
        if len(distinct) < len(values):
            raise self.refuse(path, f"lists the same choice twice in {values!r}.")
        return values

    def text(self, path: str, node: Mapping[str, Any], key: str) -> str | None:
        value = node.get(key)
        if value is not None and not isinstance(value, str):
            raise self.refuse(path, f"has the {key!r} {value!r}; it must be a string.")
        return value

    def count(self, path: str, node: Mapping[str, Any], key: str) -> int | None:
        value = node.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise self.refuse(path, f"has the {key!r} {value!r}; it must be a whole number >= 0.")
        return value

    def lengths(self, path: str, node: Mapping[str, Any], low: str, high: str) -> list[Any]:
        found: list[Any] = []
        if (minimum := self.count(path, node, low)) is not None:
            found.append(at.MinLen(minimum))
        if (maximum := self.count(path, node, high)) is not None:
            found.append(at.MaxLen(maximum))
        return found

    def bounds(
        self, path: str, node: Mapping[str, Any], read: Callable[[str, int | float | None], Any]
    ) -> list[Any]:
        """The bounds of `node`, each value passed through `read(keyword, JSON number)`."""
        found: list[Any] = []
        for keyword, bound in BOUNDS:
            value = read(keyword, self.bound(path, node, keyword))
            if value is None:
                continue
            if node.get("exclusiveM" + keyword[1:]) is True:
                bound = _DRAFT4_EXCLUSIVE.get(keyword, bound)
            found.append(bound(value))  # type: ignore[call-arg]
        return found

    def bound(self, path: str, node: Mapping[str, Any], keyword: str) -> int | float | None:
        value = node.get(keyword)
        if value is None or (isinstance(value, bool) and keyword.startswith("exclusive")):
            return None  # draft 4's `"exclusiveMinimum": true` qualifies `minimum` instead
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise self.refuse(
                path, f"has the {keyword!r} {value!r}; a bound must be a finite number."
            )
        if keyword == "multipleOf" and value <= 0:
            raise self.refuse(path, f"has the 'multipleOf' {value!r}; it must be above 0.")
        return value

