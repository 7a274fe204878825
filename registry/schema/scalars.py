"""Annotations for string and number schemas: text, formats, URLs, Decimals, bounded numbers."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AnyHttpUrl,
    AnyUrl,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    UrlConstraints,
)
from pydantic_core import SchemaError

from .keywords import (
    BOUND_KEYWORDS,
    WIDTH_FORMATS,
    X_DECIMAL_BOUNDS,
    X_DECIMAL_PLACES,
    X_MAX_DIGITS,
    X_URL_SCHEMES,
)
from .pydantic_decimal import digits_from_pattern
from .reading import NodeReader
from .typing_forms import with_metadata

_FORMATS: dict[str, Any] = {
    "date": datetime.date,
    "date-time": datetime.datetime,
    "time": datetime.time,
    "uuid": uuid.UUID,
}


class ScalarReader(NodeReader):
    """Builds the annotation of a `string` or `number` node, and the keywords it consumed."""

    def string(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        fmt = self.text(path, node, "format")
        if fmt is None:
            return self.plain_string(path, node)
        if fmt == "decimal":
            return self.decimal_type(path, node), {"type", "format", *BOUND_KEYWORDS}
        if fmt in _FORMATS:
            return _FORMATS[fmt], {"type", "format"}
        if fmt == "email":
            return with_metadata(EmailStr, self.lengths(path, node, "minLength", "maxLength")), {
                "type",
                "format",
                "minLength",
                "maxLength",
            }
        if fmt in ("uri", "url"):
            return self.url(path, node)
        raise self.refuse(path, f"uses the string format {fmt!r}, which is not supported.")

    def plain_string(self, path: str, node: Mapping[str, Any]) -> tuple[Any, set[str]]:
        constraints = StringConstraints(
            min_length=self.count(path, node, "minLength"),
            max_length=self.count(path, node, "maxLength"),
            pattern=self.text(path, node, "pattern"),
        )
        if constraints == StringConstraints():
            return str, {"type"}
        annotation = Annotated[str, constraints]
        try:
            TypeAdapter(annotation)
        except SchemaError as exc:  # e.g. a look-ahead, which Pydantic's regex engine lacks
            raise self.refuse(
                path, f"has the 'pattern' {node.get('pattern')!r}, which Pydantic cannot use: {exc}"
            ) from exc
        return annotation, {"type", "minLength", "maxLength", "pattern"}

    def url(self, path: str, node: Mapping[str, Any]) -> tuple[Any, set[str]]:
        if node.get("minLength", 1) != 1:
            raise self.refuse(
                path, "is a URL with a 'minLength' other than 1, which is not supported."
            )
        schemes, max_length = node.get(X_URL_SCHEMES), self.count(path, node, "maxLength")
        if schemes is not None and not (
            isinstance(schemes, list) and all(isinstance(s, str) for s in schemes)
        ):
            raise self.refuse(path, f"has the {X_URL_SCHEMES!r} {schemes!r}; it must list names.")
        consumed = {"type", "format", "minLength", "maxLength"}
        if schemes == ["http", "https"]:
            if max_length == 2083:
                return HttpUrl, consumed
            if max_length is None:
                return AnyHttpUrl, consumed
        if not schemes and max_length is None:
            return AnyUrl, consumed
        return Annotated[
            AnyUrl, UrlConstraints(max_length=max_length, allowed_schemes=schemes)
        ], consumed

    def decimal_type(self, path: str, node: Mapping[str, Any]) -> Any:
        metadata: list[Any] = []
        digits = self.count(path, node, X_MAX_DIGITS)
        places = self.count(path, node, X_DECIMAL_PLACES)
        if digits is not None or places is not None:
            metadata.append(Field(max_digits=digits, decimal_places=places))
        exact = node.get(X_DECIMAL_BOUNDS, {})
        if not isinstance(exact, Mapping) or set(exact) - BOUND_KEYWORDS:
            raise self.refuse(
                path,
                f"has the {X_DECIMAL_BOUNDS!r} {exact!r}; it must map bound keywords to "
                "numbers written as text.",
            )
        metadata += self.bounds(
            path, node, lambda key, number: self.exact(path, key, exact, number)
        )
        return with_metadata(decimal.Decimal, metadata)

    def exact(
        self, path: str, key: str, exact: Mapping[str, Any], number: int | float | None
    ) -> decimal.Decimal | None:
        """A Decimal bound: its exact text if stored, else the JSON number read as its text."""
        text = exact.get(key, None if number is None else str(number))
        if text is None:
            return None
        try:
            value = decimal.Decimal(text) if isinstance(text, str) else None
        except decimal.InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            raise self.refuse(
                path, f"has the Decimal bound {key!r} {text!r}, which is not a number."
            )
        return value

    def pydantic_decimal(self, path: str, members: list[Mapping[str, Any]]) -> Any:
        number = next(m for m in members if m.get("type") == "number")
        self.leftovers(path, number, {"type", *BOUND_KEYWORDS})
        pattern = str(next(m for m in members if m.get("type") == "string")["pattern"])
        return self.decimal_type(path, {**number, **digits_from_pattern(pattern)})

    def number(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        base = int if node.get("type") == "integer" else float
        fmt = self.text(path, node, "format")
        if fmt is not None and fmt not in WIDTH_FORMATS:
            raise self.refuse(path, f"uses the number format {fmt!r}, which is not supported.")
        found = self.bounds(path, node, lambda key, number: number)
        return with_metadata(base, found), {"type", "format", *BOUND_KEYWORDS}

