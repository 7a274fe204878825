"""A model as the JSON Schema that is stored for it: `model_to_schema`.

Pydantic's generator writes the schema, with vendor keywords (see `keywords`) where plain JSON
Schema is ambiguous. Before that `StorableCheck` refuses what cannot travel; after it, as a last
check, the model is rebuilt from the schema and refused, naming the field, unless the rebuilt
model gives back the same schema.
"""

from __future__ import annotations

import decimal
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ..errors import InvalidSchema
from ..names import validate_model_name
from .building import model_from_schema
from .depth import too_deep
from .fields import schema_fields
from .keywords import X_DECIMAL_BOUNDS, X_DECIMAL_PLACES, X_MAX_DIGITS, X_PYTHON_TYPE, X_URL_SCHEMES
from .storable import StorableCheck


def model_to_schema(model: type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """The JSON Schema stored for `model` (registered as `name`, default its class name).

    Raises `InvalidSchema` naming the field when the model would not behave the same after
    `model_from_schema`, and `InvalidName` for a bad model or field name.
    """
    model_name = validate_model_name(name if name is not None else model.__name__)
    try:
        StorableCheck(model_name).model(model, prefix="", stack=())
        schema = _generate(model, model_name)
    except RecursionError:
        raise too_deep(model_name) from None
    _verify_round_trip(model_name, schema)
    return schema



class _Unstorable(Exception):
    """Raised inside schema generation; turned into `InvalidSchema` by `_generate`."""


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, plus vendor keywords where plain JSON Schema is ambiguous."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        found: JsonSchemaValue = {"type": "string", "format": "decimal"}
        if schema.get("max_digits") is not None:
            found[X_MAX_DIGITS] = schema["max_digits"]
        if schema.get("decimal_places") is not None:
            found[X_DECIMAL_PLACES] = schema["decimal_places"]
        exact: dict[str, str] = {}
        for keyword, key in _DECIMAL_BOUND_KEYS:
            if schema.get(key) is not None:
                found[keyword], text = _decimal_bound(schema.get(key))
                if text is not None:
                    exact[keyword] = text
        if exact:
            found[X_DECIMAL_BOUNDS] = exact
        return found

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        found = super().enum_schema(schema)
        if schema.get("sub_type") is None:
            # A plain Enum refuses "1" for the member 1, where an IntEnum takes it.
            found[X_PYTHON_TYPE] = "enum"
        return found

    def tuple_schema(self, schema: core_schema.TupleSchema) -> JsonSchemaValue:
        return {**super().tuple_schema(schema), X_PYTHON_TYPE: "tuple"}

    def url_schema(self, schema: core_schema.UrlSchema) -> JsonSchemaValue:
        found = super().url_schema(schema)
        if schema.get("allowed_schemes"):
            found[X_URL_SCHEMES] = list(schema.get("allowed_schemes") or ())
        return found

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        # Pydantic leaves factory defaults out; `StorableCheck` allowed only constant factories, so
        # one produced value is the default the rebuilt model has.
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return typing.cast(Callable[[], Any], factory)()
        return super().get_default_value(schema)

    def emit_warning(self, kind: Any, detail: str) -> None:
        # A warning here means part of the model was left out of its schema.
        raise _Unstorable(detail)


_DECIMAL_BOUND_KEYS = (
    ("minimum", "ge"),
    ("maximum", "le"),
    ("exclusiveMinimum", "gt"),
    ("exclusiveMaximum", "lt"),
    ("multipleOf", "multiple_of"),
)


def _decimal_bound(value: Any) -> tuple[int | float, str | None]:
    """A Decimal bound as a JSON number, and its exact text when the number loses digits."""
    # Pydantic reads a float bound as its shortest text (0.1 is Decimal("0.1")); so do we.
    exact = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if not exact.is_finite():
        raise _Unstorable(f"the Decimal bound {value!r} is not a finite number.")
    if exact == exact.to_integral_value():
        return int(exact), None
    number = float(exact)
    return number, None if decimal.Decimal(repr(number)) == exact else str(exact)


def _generate(model: type[BaseModel], model_name: str) -> dict[str, Any]:
    try:
        schema = model.model_json_schema(schema_generator=_Generator)
    except _Unstorable as exc:
        raise InvalidSchema(
            f"Model {model_name!r} cannot be stored as JSON Schema: {exc}", model=model_name
        ) from exc
    # Records keep no unknown fields, and every rebuilt model forbids them (see the docstring).
    schema["additionalProperties"] = False
    _check_defs(model_name, schema)
    return schema


def _check_defs(model_name: str, schema: Mapping[str, Any]) -> None:
    if "$ref" in schema:  # Pydantic moves a self-referencing model into $defs.
        raise InvalidSchema(
            f"Model {model_name!r} refers to itself; recursive models are not supported.",
            model=model_name,
        )
    seen: dict[str, str] = {}
    for key, node in schema.get("$defs", {}).items():
        title = str(node.get("title", key))
        if title in seen:
            raise InvalidSchema(
                f"Model {model_name!r} uses two different nested types named {title!r}; "
                "rename one so that the stored schema can tell them apart.",
                model=model_name,
            )
        seen[title] = key


def _verify_round_trip(model_name: str, schema: dict[str, Any]) -> None:
    """Raise `InvalidSchema` unless the rebuilt model gives back exactly `schema`."""
    rebuilt = _generate(model_from_schema(model_name, schema), model_name)
    if rebuilt == schema:
        return
    before, after = schema_fields(schema), schema_fields(rebuilt)
    for name in before:
        if before[name] != after.get(name):
            raise InvalidSchema(
                f"Field {name!r} of model {model_name!r} does not keep its meaning through JSON "
                f"Schema: it is stored as {_short(before[name])} but rebuilds as "
                f"{_short(after.get(name))}.",
                model=model_name,
                field=name,
            )
    raise InvalidSchema(
        f"Model {model_name!r} does not keep its meaning through JSON Schema: "
        f"{_short(schema)} rebuilds as {_short(rebuilt)}.",
        model=model_name,
    )


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."

