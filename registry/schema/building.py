"""Models as stored JSON Schema, and models rebuilt from it.

A registered model travels to worker processes as the JSON Schema that `model_to_schema` returns,
and `model_from_schema` rebuilds an equivalent Pydantic model there. Only what survives that trip
with unchanged behaviour is stored; anything else is refused with `InvalidSchema` naming the field.

Supported field types: str (min/max length, pattern), int and float (bounds, multipleOf), bool,
None, Decimal (max_digits, decimal_places, bounds), date, datetime, time, UUID, EmailStr, AnyUrl,
AnyHttpUrl and HttpUrl (and other URL types limited to schemes and length), Enums with str or int
values, Literal, Optional and unions of these, list, set, frozenset (rebuilt as set), tuple,
dict[str, X], Any, and nested models (in `$defs`, nested at any depth).

Refused: validators, serializers, computed fields, `model_post_init` and other overridden
BaseModel methods, Enums with a `_missing_` hook (Python code cannot travel to workers), Flag
enums (they accept combinations a list of members does not describe), compiled `re.Pattern`
patterns (checked with Python's re and its flags, where workers get only the text), aliases,
`exclude` and `exclude_if`, strict or otherwise behaviour-changing options (any model_config key
not known to leave validation and dumps alone), arbitrary classes, recursive models, non-finite
bounds, default factories that produce a fresh value on each call, defaults that are not JSON,
and field names starting with `model_` at any depth (Pydantic reserves them).

Vendor keywords, used only where plain JSON Schema is ambiguous:

    {"type": "string", "format": "decimal", "x-max-digits": 5, "x-decimal-places": 2}
        a Decimal; bounds are kept as `minimum` etc. A Decimal validates JSON numbers too, but
        its JSON form is a string, which keeps its precision.
    {"type": "string", "format": "decimal", "maximum": 1e16,
     "x-decimal-bounds": {"maximum": "9999999999999999.99"}}
        a Decimal bound with more digits than a JSON number keeps (it is read as a float by
        most parsers): the exact text, which wins over the rounded `maximum`.
    {"type": "array", "x-python-type": "tuple", ...}
        a tuple (`tuple[int, ...]` is otherwise the same schema as `list[int]`).
    {"enum": [1, 2], "x-python-type": "enum", ...}
        a plain Enum, which refuses the text "1" where an IntEnum (no vendor key) takes it.
    {"type": "string", "format": "uri", "x-url-schemes": ["http", "https"]}
        a URL limited to those schemes (HttpUrl when `maxLength` is 2083).

Other `x-` keys of a field (a field's `json_schema_extra`) are kept as they are, for UI hints.
As a last check, `model_to_schema` rebuilds the model and refuses it, naming the field, unless
the rebuilt model gives back the same schema.

`model_from_schema` also reads JSON Schema written by other producers: `type` lists, OpenAPI's
`nullable`, Pydantic's own Decimal form, legacy `definitions`, inline nested objects and
draft-4 boolean `exclusiveMinimum`. A keyword that changes validation and has no Pydantic
equivalent (`oneOf` with several alternatives, `patternProperties`, `if`, `not`, ...) is
refused; purely descriptive keywords are ignored. Every rebuilt model forbids unknown fields,
because a record has no column to keep them in.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import math
import re
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic import (
    AnyHttpUrl,
    AnyUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    UrlConstraints,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticSerializationError, PydanticUndefined, SchemaError, core_schema

from ..errors import InvalidSchema, RegistryError
from ..names import validate_field_name, validate_model_name
from ..types import FieldKind, classify
from .depth import MAX_SCHEMA_DEPTH, check_schema_depth

__all__ = ["SchemaDiff", "diff_schemas", "model_from_schema", "model_to_schema", "schema_fields"]

X_PYTHON_TYPE = "x-python-type"
X_MAX_DIGITS = "x-max-digits"
X_DECIMAL_PLACES = "x-decimal-places"
X_URL_SCHEMES = "x-url-schemes"
X_DECIMAL_BOUNDS = "x-decimal-bounds"
#: A field's index declarations (registry/query/indexes.py reads them).
INDEX_KEYS = frozenset({"x-index", "x-unique"})
_OUR_KEYS = frozenset(
    {X_PYTHON_TYPE, X_MAX_DIGITS, X_DECIMAL_PLACES, X_URL_SCHEMES, X_DECIMAL_BOUNDS}
)

#: JSON Schema keywords that change what validates. One that no builder below consumes is
#: refused; any other keyword (title, description, examples, $comment, x-...) only describes.
_VALIDATING = frozenset(
    {
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "uniqueItems", "maxContains", "minContains", "contains", "maxProperties",
        "minProperties", "required", "dependentRequired", "dependentSchemas", "dependencies",
        "properties", "patternProperties", "additionalProperties", "propertyNames", "items",
        "prefixItems", "additionalItems", "unevaluatedItems", "unevaluatedProperties", "allOf",
        "anyOf", "oneOf", "not", "if", "then", "else", "format", "$ref", "$dynamicRef",
        "discriminator", "nullable", "contentEncoding", "contentSchema",
    }
)  # fmt: skip

_SCALARS: frozenset[Any] = frozenset(
    {str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, datetime.time,
     uuid.UUID}
)  # fmt: skip
_FORMATS: dict[str, Any] = {
    "date": datetime.date,
    "date-time": datetime.datetime,
    "time": datetime.time,
    "uuid": uuid.UUID,
}
#: OpenAPI producers tag numbers with their machine width; it narrows nothing we check.
_WIDTH_FORMATS = frozenset({"int32", "int64", "float", "double"})
_BOUNDS: tuple[tuple[str, type[at.BaseMetadata]], ...] = (
    ("minimum", at.Ge),
    ("maximum", at.Le),
    ("exclusiveMinimum", at.Gt),
    ("exclusiveMaximum", at.Lt),
    ("multipleOf", at.MultipleOf),
)
#: Factories that return the same empty value on every call, so storing one result is exact.
_CONSTANT_FACTORIES: frozenset[Any] = frozenset(
    {list, dict, set, frozenset, tuple, str, int, float, bool}
)
#: model_config keys that may take any value: they change neither validation nor dumps, only
#: titles and descriptions (stored in the schema, so the round trip checks them), how Pydantic
#: builds the class, or which types it allows (the field checks refuse the others anyway).
#: `extra` is stored as `additionalProperties`.
_HARMLESS_CONFIG = frozenset(
    {
        "title", "extra", "arbitrary_types_allowed", "protected_namespaces", "defer_build",
        "cache_strings", "use_attribute_docstrings", "model_title_generator",
        "field_title_generator",
    }
)  # fmt: skip
#: Every other model_config key Pydantic knows, with its default: set to anything else it may
#: change validation or dumps in a way JSON Schema does not record. A key on neither list (one
#: a later Pydantic adds) is refused until someone checks what it does.
_NEUTRAL_CONFIG: dict[str, Any] = {
    "alias_generator": None,
    "allow_inf_nan": True,
    "coerce_numbers_to_str": False,
    "from_attributes": False,
    "frozen": False,
    "hide_input_in_errors": False,
    "ignored_types": (),
    "json_encoders": None,
    "json_schema_extra": None,
    "json_schema_mode_override": None,
    "json_schema_serialization_defaults_required": False,
    "loc_by_alias": True,
    "plugin_settings": None,
    "polymorphic_serialization": False,
    "populate_by_name": False,
    "regex_engine": "rust-regex",
    "revalidate_instances": "never",
    "schema_generator": None,
    "ser_json_bytes": "utf8",
    "ser_json_inf_nan": "null",
    "ser_json_temporal": "iso8601",
    "ser_json_timedelta": "iso8601",
    "serialize_by_alias": False,
    "str_max_length": None,
    "str_min_length": 0,
    "str_strip_whitespace": False,
    "str_to_lower": False,
    "str_to_upper": False,
    "strict": False,
    "url_preserve_empty_path": False,
    "use_enum_values": False,
    "val_json_bytes": "utf8",
    "val_temporal_unit": "infer",
    "validate_assignment": False,
    "validate_by_alias": True,
    "validate_by_name": False,
    "validate_default": False,
    "validate_return": False,
    "validation_error_cause": False,
}
#: BaseModel methods that run on every record; an override is Python code, like a validator.
_MODEL_HOOKS = (
    "__init__",
    "model_post_init",
    "model_validate",
    "model_validate_json",
    "model_validate_strings",
    "model_dump",
    "model_dump_json",
    "__get_pydantic_core_schema__",
)
#: Enum hooks Pydantic calls while validating: `_missing_` maps values that are not members.
_ENUM_HOOKS = ("_missing_", "__get_pydantic_core_schema__")
#: Modules whose methods are the ones every model or Enum has, not the registering user's code.
_LIBRARY_MODULES = frozenset({"pydantic", "enum", "builtins"})
#: Names the functional Enum API refuses for a member (besides _sunder_ and __dunder__ names).
_RESERVED_MEMBER_NAMES = frozenset({"mro"})
#: Bounds and lengths, which Pydantic writes into the schema and reads back the same.
_CONSTRAINTS = (
    at.Gt,
    at.Ge,
    at.Lt,
    at.Le,
    at.MultipleOf,
    at.MinLen,
    at.MaxLen,
    at.Interval,
    at.Len,
)
_GENERAL_METADATA_KEYS = frozenset({"pattern", "max_digits", "decimal_places"})
_PYDANTIC_DECIMAL_PREFIX = "^(?!^[-+.]*$)"
#: Draft 4 wrote an exclusive bound as `"minimum": 5, "exclusiveMinimum": true`.
_DRAFT4_EXCLUSIVE: dict[str, type[at.BaseMetadata]] = {"minimum": at.Gt, "maximum": at.Lt}
#: Dumps NaN and infinity as themselves, so that the strict `json.dumps` below refuses them.
_STRICT_JSON: TypeAdapter[Any] = TypeAdapter(Any, config=ConfigDict(ser_json_inf_nan="constants"))
_NO_CODE = "validators are Python code and cannot travel to workers through JSON Schema."
_TIME_KINDS = frozenset({FieldKind.DATE, FieldKind.DATETIME, FieldKind.TIME, FieldKind.UUID})


# --------------------------------------------------------------------------- model -> schema


def model_to_schema(model: type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """The JSON Schema stored for `model` (registered as `name`, default its class name).

    Raises `InvalidSchema` naming the field when the model would not behave the same after
    `model_from_schema`, and `InvalidName` for a bad model or field name.
    """
    model_name = validate_model_name(name if name is not None else model.__name__)
    try:
        _Checker(model_name).model(model, prefix="", stack=())
        schema = _generate(model, model_name)
    except RecursionError:
        raise _too_deep(model_name) from None
    _verify_round_trip(model_name, schema)
    return schema


def _too_deep(model_name: str) -> InvalidSchema:
    # The depth check (`schema_depth`) keeps registered schemas well inside the stack; a
    # Python class can still nest deeper models than that before it is ever turned into one.
    return InvalidSchema(
        f"The schema of model {model_name!r} nests too deeply to be stored or rebuilt; the "
        f"limit is {MAX_SCHEMA_DEPTH} levels of objects and arrays.",
        model=model_name,
        limit=MAX_SCHEMA_DEPTH,
    )


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
        # Pydantic leaves factory defaults out; `_Checker` allowed only constant factories, so
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


_RESERVED_PREFIX = "starts with 'model_', which Pydantic reserves."


def _own_code(cls: type, names: Iterable[str]) -> str | None:
    """The first of the methods `names` that `cls` takes from code outside Pydantic and enum."""
    for name in names:
        found = inspect.getattr_static(cls, name, None)
        if found is None:
            continue
        function = getattr(found, "__func__", found)  # a classmethod or staticmethod
        # Pydantic wraps model_post_init to set private attributes; what it wraps is what runs.
        function = inspect.unwrap(function) if callable(function) else function
        module = str(getattr(function, "__module__", None) or "")
        if module.split(".")[0] not in _LIBRARY_MODULES:
            return name
    return None


def _is_finite(value: float | decimal.Decimal) -> bool:
    return value.is_finite() if isinstance(value, decimal.Decimal) else math.isfinite(value)


class _Checker:
    """Refuses what would not behave the same once rebuilt from JSON Schema."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def refuse(self, field: str, reason: str) -> InvalidSchema:
        return InvalidSchema(
            f"Field {field!r} of model {self.model_name!r} {reason}",
            model=self.model_name,
            field=field,
        )

    def model(self, model: type[BaseModel], prefix: str, stack: tuple[type, ...]) -> None:
        if model in stack:
            raise self.refuse(
                prefix.rstrip("."),
                "refers back to its own model; recursive models are not supported.",
            )
        self.code(model, prefix)
        self.config(model, prefix)
        for name, info in model.model_fields.items():
            self.field_name(prefix, name)
            self.field(prefix + name, info, (*stack, model))

    def field_name(self, prefix: str, name: str) -> None:
        if not prefix:
            validate_field_name(self.model_name, name)
        elif name.startswith("model_"):
            raise self.refuse(prefix + name, _RESERVED_PREFIX)

    def code(self, model: type[BaseModel], prefix: str) -> None:
        self.decorators(model, prefix)
        hook = _own_code(model, _MODEL_HOOKS)
        if hook is not None:
            raise InvalidSchema(
                f"The {self.where(prefix)} {self.model_name!r} defines its own {hook}, which "
                "runs Python code on every record; it cannot travel to workers through JSON "
                "Schema.",
                model=self.model_name,
            )

    def decorators(self, model: type[BaseModel], prefix: str) -> None:
        decorators = model.__pydantic_decorators__
        for name in model.__pydantic_computed_fields__:
            raise self.refuse(prefix + name, "is a computed field; " + _NO_CODE)
        field_code: list[tuple[str, tuple[str, ...]]] = [
            *((d.cls_var_name, d.info.fields) for d in decorators.field_validators.values()),
            *((d.cls_var_name, d.info.fields) for d in decorators.validators.values()),
            *((d.cls_var_name, d.info.fields) for d in decorators.field_serializers.values()),
        ]
        for function, fields in field_code:
            named = [f for f in fields if f != "*"]
            target = prefix + (named[0] if named else "*")
            raise self.refuse(
                target, f"has a custom validator or serializer ({function}); {_NO_CODE}"
            )
        model_code = [
            *decorators.model_validators,
            *decorators.root_validators,
            *decorators.model_serializers,
        ]
        if model_code:
            raise InvalidSchema(
                f"The {self.where(prefix)} {self.model_name!r} has a model validator or "
                f"serializer ({model_code[0]}); {_NO_CODE}",
                model=self.model_name,
            )

    def where(self, prefix: str) -> str:
        return f"nested model {prefix.rstrip('.')!r} of model" if prefix else "model"

    def config(self, model: type[BaseModel], prefix: str) -> None:
        for key, value in model.model_config.items():
            if key in _HARMLESS_CONFIG or _NEUTRAL_CONFIG.get(key, PydanticUndefined) == value:
                continue
            if key == "json_schema_extra" and not prefix and _only_vendor_keys(value):
                continue  # the model's own x- keys (composite indexes) are stored as they are
            raise InvalidSchema(
                f"The {self.where(prefix)} {self.model_name!r} sets model_config[{key!r}] to "
                f"{value!r}, which may change validation or dumps in a way JSON Schema does not "
                f"record; only {', '.join(sorted(_HARMLESS_CONFIG))} may be set (others only to "
                "their defaults).",
                model=self.model_name,
                key=key,
            )

    def field(self, name: str, info: FieldInfo, stack: tuple[type, ...]) -> None:
        self.field_options(name, info)
        for item in info.metadata:
            self.metadata(name, item, stack)
        self.annotation(name, info.annotation, stack)
        self.default(name, info)

    def field_options(self, name: str, info: FieldInfo) -> None:
        if info.alias or info.validation_alias or info.serialization_alias:
            raise self.refuse(
                name, "has an alias; aliases are not supported, name the field as the data does."
            )
        options = {
            "exclude": info.exclude,
            "exclude_if": info.exclude_if is not None,
            "discriminator": info.discriminator is not None,
        }
        used = [option for option, on in options.items() if on]
        if used:
            raise self.refuse(name, f"uses {used[0]}, which JSON Schema does not record.")
        extra = info.json_schema_extra
        if callable(extra) or any(not k.startswith("x-") or k in _OUR_KEYS for k in extra or {}):
            raise self.refuse(
                name, "has json_schema_extra other than 'x-' keys; only those are kept."
            )

    def metadata(self, name: str, item: Any, stack: tuple[type, ...]) -> None:
        if isinstance(item, FieldInfo):
            self.field_options(name, item)
            for inner in item.metadata:
                self.metadata(name, inner, stack)
        elif isinstance(item, StringConstraints):
            self.string_constraints(name, item)
            self.pattern(name, item.pattern)
        elif isinstance(item, UrlConstraints):
            self.url_constraints(name, item)
        elif type(item).__name__ == "_PydanticGeneralMetadata":  # what Field() keeps of pattern
            if set(vars(item)) - _GENERAL_METADATA_KEYS:
                raise self.refuse(
                    name,
                    f"uses options {sorted(vars(item))}; only pattern, max_digits and "
                    "decimal_places are kept.",
                )
            self.pattern(name, getattr(item, "pattern", None))
        elif isinstance(item, _CONSTRAINTS):
            self.finite(name, item)
        else:
            raise self.refuse(
                name,
                f"is annotated with {item!r}, which cannot be stored as JSON Schema (validators "
                "and custom types cannot travel to workers).",
            )

    def pattern(self, name: str, pattern: Any) -> None:
        if isinstance(pattern, re.Pattern):
            raise self.refuse(
                name,
                f"has the compiled pattern {pattern!r}; Pydantic checks a compiled pattern with "
                "Python's re and its flags, but workers get only its text, checked by another "
                "engine. Pass the pattern as a string.",
            )

    def finite(self, name: str, item: Any) -> None:
        for value in (getattr(item, f.name) for f in dataclasses.fields(item)):
            if isinstance(value, float | decimal.Decimal) and not _is_finite(value):
                raise self.refuse(
                    name, f"has the bound {value!r}; only finite bounds can be stored as JSON."
                )

    def string_constraints(self, name: str, item: StringConstraints) -> None:
        if item.strip_whitespace or item.to_upper or item.to_lower or item.strict:
            raise self.refuse(
                name,
                "changes or strictly checks strings (strip/upper/lower/strict), which JSON "
                "Schema does not record.",
            )
        if getattr(item, "ascii_only", None):
            raise self.refuse(name, "allows ASCII only, which JSON Schema does not record.")

    def url_constraints(self, name: str, item: UrlConstraints) -> None:
        extra = [
            k
            for k, v in vars(item).items()
            if v is not None and k not in ("max_length", "allowed_schemes")
        ]
        if extra:
            raise self.refuse(
                name, f"is a URL with constraints {extra}, which JSON Schema does not record."
            )

    def annotation(self, name: str, annotation: Any, stack: tuple[type, ...]) -> None:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is Annotated:
            for item in annotation.__metadata__:
                self.metadata(name, item, stack)
            self.annotation(name, args[0], stack)
        elif annotation is Any or annotation is None or annotation is type(None):
            return
        elif origin is Literal:
            self.literal(name, args)
        elif origin in (Union, types.UnionType, list, set, frozenset, tuple):
            for arg in args:
                if arg is not Ellipsis:
                    self.annotation(name, arg, stack)
        elif origin is dict:
            if args and args[0] is not str:
                raise self.refuse(
                    name,
                    f"is a dict keyed by {args[0]!r}; JSON object keys are strings, so use "
                    "dict[str, ...].",
                )
            self.annotation(name, args[1] if args else Any, stack)
        elif annotation in (list, set, frozenset, tuple, dict):
            return
        else:
            self.cls(name, annotation, stack)

    def literal(self, name: str, values: tuple[Any, ...]) -> None:
        for value in values:
            if value is not None and not isinstance(value, str | int):
                raise self.refuse(
                    name,
                    f"allows the literal {value!r}; only str, int, bool and None literals can be "
                    "stored.",
                )

    def cls(self, name: str, annotation: Any, stack: tuple[type, ...]) -> None:
        if not isinstance(annotation, type):
            raise self.refuse(
                name, f"has type {annotation!r}, which cannot be stored as JSON Schema."
            )
        if issubclass(annotation, BaseModel):
            self.model(annotation, name + ".", stack)
        elif issubclass(annotation, enum.Enum):
            self.enum(name, annotation)
        elif issubclass(annotation, AnyUrl):
            if _own_code(annotation, ("__get_pydantic_core_schema__",)) is not None:
                raise self.refuse(
                    name,
                    f"is the URL type {annotation.__qualname__}, which validates with its "
                    "own Python code; it cannot travel to workers.",
                )
            self.url_constraints(name, getattr(annotation, "_constraints", UrlConstraints()))
        elif annotation not in _SCALARS and annotation is not EmailStr:
            raise self.refuse(
                name,
                f"has type {annotation.__qualname__}, which cannot be stored as JSON Schema: only "
                "JSON-like types, Enums and nested models can travel to workers.",
            )

    def enum(self, name: str, annotation: type[enum.Enum]) -> None:
        if issubclass(annotation, enum.Flag):
            raise self.refuse(
                name,
                f"is the Flag {annotation.__qualname__}, which also accepts combinations of its "
                "members; JSON Schema lists only the members, so Flags cannot be stored.",
            )
        hook = _own_code(annotation, _ENUM_HOOKS)
        if hook is not None:
            raise self.refuse(
                name,
                f"is the Enum {annotation.__qualname__}, which defines its own {hook}; Pydantic "
                "calls it while validating, and Python code cannot travel to workers.",
            )
        self.literal(name, tuple(member.value for member in annotation))
        if any(isinstance(member.value, bool) for member in annotation):
            raise self.refuse(
                name, "is an Enum with bool values; only str and int values can be stored."
            )

    def default(self, name: str, info: FieldInfo) -> None:
        if info.default_factory is not None:
            value = self.factory_value(name, info)
        elif info.default is PydanticUndefined:
            return
        else:
            value = info.default
        try:
            dumped = _STRICT_JSON.dump_python(value, mode="json", warnings="error")
            json.dumps(dumped, allow_nan=False)
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise self.refuse(
                name, f"has the default {value!r}, which cannot be stored as JSON."
            ) from exc

    def factory_value(self, name: str, info: FieldInfo) -> Any:
        factory = info.default_factory
        if info.default_factory_takes_validated_data or factory is None:
            raise self.refuse(
                name,
                "has a default_factory that reads the other fields; it cannot travel to workers.",
            )
        call = typing.cast(Callable[[], Any], factory)
        if factory in _CONSTANT_FACTORIES or (
            isinstance(factory, type) and issubclass(factory, BaseModel)
        ):
            return call()
        first, second = call(), call()
        if first != second or classify(info.annotation).kind in _TIME_KINDS:
            raise self.refuse(
                name,
                f"has a default_factory ({factory!r}) that may produce a fresh value on each call "
                "(such as now() or uuid4()); only a constant default can be stored.",
            )
        return first


# --------------------------------------------------------------------------- schema -> model


def model_from_schema(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A Pydantic model named `name` that validates what `schema` describes.

    Raises `InvalidSchema` naming the field and keyword for what cannot be rebuilt faithfully,
    and `InvalidName` for a bad model or field name.
    """
    model_name = validate_model_name(name)
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise InvalidSchema(
            f"The schema of model {model_name!r} must be an object with 'type': 'object'.",
            model=model_name,
        )
    if not isinstance(schema.get("properties"), Mapping):
        raise InvalidSchema(
            f"The schema of model {model_name!r} must list its fields under 'properties'.",
            model=model_name,
        )
    for key in ("definitions", "$defs"):
        if not isinstance(schema.get(key, {}), Mapping):
            raise InvalidSchema(
                f"The schema of model {model_name!r} has {key!r} that is not an object of "
                "named schemas.",
                model=model_name,
            )
    check_schema_depth(model_name, schema)
    builder = _Builder(model_name, schema)
    try:
        return builder.model(model_name, schema, prefix="", top=True)
    except RecursionError:
        raise _too_deep(model_name) from None


class _Builder:
    """Turns one schema's nodes into annotations; nested models are built once per $defs entry."""

    def __init__(self, model_name: str, schema: Mapping[str, Any]) -> None:
        self.model_name = model_name
        self.defs: dict[str, Any] = {**schema.get("definitions", {}), **schema.get("$defs", {})}
        self.built: dict[str, Any] = {}
        self.building: set[str] = set()

    def refuse(self, field: str, reason: str) -> InvalidSchema:
        where = (
            f"Field {field!r} of model {self.model_name!r}"
            if field
            else f"Model {self.model_name!r}"
        )
        return InvalidSchema(f"{where} {reason}", model=self.model_name, field=field or None)

    # -- models

    def model(
        self, class_name: str, node: Mapping[str, Any], prefix: str, top: bool
    ) -> type[BaseModel]:
        self.leftovers(
            prefix.rstrip("."), node, {"type", "properties", "required", "additionalProperties"}
        )
        properties = node.get("properties", {})
        if not isinstance(properties, Mapping):
            raise self.refuse(
                prefix.rstrip("."), "has 'properties' that is not an object of field schemas."
            )
        required = self.required(prefix, node, properties)
        fields = {
            name: self.field(
                prefix + self.field_name(prefix, name, top), node_, name in required, class_name
            )
            for name, node_ in properties.items()
        }
        config = ConfigDict(extra="forbid" if top else self.extra(prefix, node))
        vendor = {k: v for k, v in node.items() if k.startswith("x-") and k not in _OUR_KEYS}
        if top and vendor:
            config["json_schema_extra"] = vendor
        if isinstance(node.get("title"), str) and node["title"] != class_name:
            config["title"] = node["title"]
        description = node.get("description")
        return self.create(
            class_name, config, description if isinstance(description, str) else None, fields
        )

    def create(
        self, class_name: str, config: ConfigDict, doc: str | None, fields: dict[str, Any]
    ) -> type[BaseModel]:
        try:
            with warnings.catch_warnings():
                # A field such as `json` or `copy` shadows a deprecated BaseModel method; that is
                # harmless for a record, so Pydantic's warning about it is not passed on.
                warnings.filterwarnings(
                    "ignore", message=".*shadows an attribute", category=UserWarning
                )
                return create_model(class_name, __config__=config, __doc__=doc, **fields)
        except (SchemaError, TypeError, ValueError) as exc:
            raise self.refuse("", f"cannot be rebuilt from its schema: {exc}") from exc

    def required(
        self, prefix: str, node: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> set[str]:
        required = node.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.refuse(
                prefix.rstrip("."), "has a 'required' keyword that is not a list of field names."
            )
        for name in required:
            if name not in properties:
                raise self.refuse(prefix + name, "is required but not defined under 'properties'.")
        return set(required)

    def field_name(self, prefix: str, name: str, top: bool) -> str:
        if top:
            return validate_field_name(self.model_name, name)
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise self.refuse(
                f"{prefix}{name}", "is not a Python identifier without a leading underscore."
            )
        if name.startswith("model_"):  # create_model would take `model_config` as the config
            raise self.refuse(prefix + name, _RESERVED_PREFIX)
        return name

    def extra(self, prefix: str, node: Mapping[str, Any]) -> Literal["forbid", "allow", "ignore"]:
        extra = node.get("additionalProperties")
        if extra is False:
            return "forbid"
        if extra is None:
            return "ignore"
        if extra is True or extra == {}:
            return "allow"
        raise self.refuse(
            prefix.rstrip("."),
            "has both 'properties' and a schema for 'additionalProperties', which is not "
            "supported.",
        )

    def field(self, path: str, node: Any, required: bool, owner: str) -> tuple[Any, FieldInfo]:
        try:
            return self.field_spec(path, node, required, owner)
        except RegistryError:
            raise
        except Exception as exc:  # a malformed value the checks above did not foresee
            raise self.refuse(
                path, f"cannot be rebuilt from its schema ({type(exc).__name__}: {exc})."
            ) from exc

    def field_spec(self, path: str, node: Any, required: bool, owner: str) -> tuple[Any, FieldInfo]:
        annotation = self.annotation(path, node, owner)
        if required:
            default: Any = PydanticUndefined
        elif isinstance(node, Mapping) and "default" in node:
            default = self.default(path, annotation, node["default"])
        else:  # JSON Schema's optional property, with nothing to fill it: absent means null.
            annotation, default = _nullable(annotation), None
        return annotation, Field(default, **self.descriptive(node))

    def descriptive(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            return {}
        found: dict[str, Any] = {}
        for key in ("title", "description"):
            if isinstance(node.get(key), str):
                found[key] = node[key]
        if isinstance(node.get("examples"), list):
            found["examples"] = node["examples"]
        extra = {k: v for k, v in node.items() if k.startswith("x-") and k not in _OUR_KEYS}
        if extra:
            found["json_schema_extra"] = extra
        return found

    def default(self, path: str, annotation: Any, value: Any) -> Any:
        # The stored default is JSON; the model holds the Python value (an Enum member, a set,
        # a date), as the original model did.
        try:
            return TypeAdapter(annotation).validate_json(json.dumps(value, allow_nan=False))
        except (ValidationError, ValueError, TypeError) as exc:
            raise self.refuse(
                path, f"has the default {value!r}, which its own type rejects."
            ) from exc

    # -- annotations

    def annotation(self, path: str, node: Any, owner: str) -> Any:
        if node is True:
            return Any
        if not isinstance(node, Mapping):
            raise self.refuse(path, f"has the schema {node!r}, which is not a JSON Schema object.")
        annotation, consumed = self.dispatch(path, node, owner)
        self.leftovers(path, node, consumed)
        if node.get("nullable") is True:  # OpenAPI 3.0's way of saying "or null"
            annotation = _nullable(annotation)
        return annotation

    def leftovers(self, path: str, node: Mapping[str, Any], consumed: Iterable[str]) -> None:
        unsupported = sorted(set(node) & _VALIDATING - set(consumed) - {"nullable"})
        if unsupported:
            raise self.refuse(
                path,
                f"uses the JSON Schema keyword {unsupported[0]!r}, which changes validation and "
                "is not supported.",
            )

    def dispatch(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        if "$ref" in node:
            return self.ref(path, node["$ref"]), {"$ref"}
        if "allOf" in node:
            return self.all_of(path, node, owner)
        if "anyOf" in node or "oneOf" in node:
            return self.union(path, node, owner)
        if "enum" in node or "const" in node:
            return self.literal(path, node)
        kind = node.get("type", self.implied_type(node))
        if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
            return self.type_list(path, node, kind, owner)
        if kind is not None and not isinstance(kind, str):
            raise self.refuse(
                path, f"has the 'type' {kind!r}; it must be a string or a list of strings."
            )
        return self.typed(path, node, kind, owner)

    def implied_type(self, node: Mapping[str, Any]) -> str | None:
        if "properties" in node or "additionalProperties" in node:
            return "object"
        if "items" in node or "prefixItems" in node:
            return "array"
        return None

    def typed(
        self, path: str, node: Mapping[str, Any], kind: Any, owner: str
    ) -> tuple[Any, set[str]]:
        builders: dict[Any, Callable[[str, Mapping[str, Any], str], tuple[Any, set[str]]]] = {
            "string": self.string,
            "integer": self.number,
            "number": self.number,
            "boolean": lambda *_: (bool, {"type"}),
            "null": lambda *_: (type(None), {"type"}),
            "array": self.array,
            "object": self.object,
            None: lambda *_: (Any, set()),
        }
        if kind not in builders:
            raise self.refuse(path, f"has the unknown type {kind!r}.")
        return builders[kind](path, node, owner)

    def type_list(
        self, path: str, node: Mapping[str, Any], kinds: list[Any], owner: str
    ) -> tuple[Any, set[str]]:
        others = [k for k in kinds if k != "null"]
        if not others:
            return type(None), {"type"}
        annotations, consumed = [], {"type"}
        for kind in others:
            annotation, used = self.typed(path, {**node, "type": kind}, kind, owner)
            annotations.append(annotation)
            consumed |= used
        result = _union(annotations)
        return (_nullable(result) if "null" in kinds else result), consumed

    def ref(self, path: str, ref: Any) -> Any:
        match = (
            re.fullmatch(r"#/(?:\$defs|definitions)/(.+)", ref) if isinstance(ref, str) else None
        )
        if match is None or match.group(1) not in self.defs:
            raise self.refuse(
                path, f"refers to {ref!r}; only references into this schema's $defs are supported."
            )
        key = match.group(1)
        if key in self.built:
            return self.built[key]
        if key in self.building:
            raise self.refuse(path, f"refers back to {key!r}; recursive models are not supported.")
        self.building.add(key)
        try:
            self.built[key] = self.definition(path, key, self.defs[key])
        finally:
            self.building.discard(key)
        return self.built[key]

    def definition(self, path: str, key: str, node: Any) -> Any:
        if isinstance(node, Mapping) and "enum" in node and "properties" not in node:
            enum_class = self.enum_class(path, key, node)
            self.leftovers(path, node, {"enum", "type"})
            return enum_class
        if (
            isinstance(node, Mapping)
            and "properties" in node
            and node.get("type", "object") == "object"
        ):
            return self.model(key, node, prefix=path + ".", top=False)
        return self.annotation(path, node, key)

    def enum_class(self, path: str, key: str, node: Mapping[str, Any]) -> type[enum.Enum]:
        values = self.enum_values(path, key, node)
        mixin = None if node.get(X_PYTHON_TYPE) == "enum" else type(values[0])
        try:
            created = enum.Enum(  # type: ignore[misc]
                str(node.get("title", key)),
                list(zip(_member_names(values), values, strict=True)),
                type=mixin,
            )
        except (TypeError, ValueError) as exc:
            raise self.refuse(path, f"is an enum {key!r} that Python cannot build: {exc}") from exc
        created.__doc__ = (
            node.get("description") if isinstance(node.get("description"), str) else None
        )
        return created

    def enum_values(self, path: str, key: str, node: Mapping[str, Any]) -> list[Any]:
        values = self.literal_values(path, node["enum"])
        base: type = str if all(isinstance(v, str) for v in values) else int
        if not all(isinstance(v, base) and not isinstance(v, bool) for v in values):
            raise self.refuse(
                path,
                f"is an enum {key!r} with values {values!r}; an enum's values must be all strings "
                "or all integers.",
            )
        return values

    def all_of(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        # Older Pydantic wrapped a $ref that had siblings as allOf: [$ref]; only that form is read.
        members = node["allOf"]
        if not isinstance(members, list) or len(members) != 1:
            raise self.refuse(
                path,
                "uses the JSON Schema keyword 'allOf' with several schemas, which is not "
                "supported.",
            )
        return self.annotation(path, members[0], owner), {"allOf"}

    def union(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        keyword = "anyOf" if "anyOf" in node else "oneOf"
        members = node[keyword]
        if not isinstance(members, list) or not members:
            raise self.refuse(path, f"has a '{keyword}' that is not a list of schemas.")
        others = [m for m in members if not (isinstance(m, Mapping) and m.get("type") == "null")]
        if _is_pydantic_decimal(others):  # Pydantic's `Decimal | None` adds a null branch
            result = self.pydantic_decimal(path, others)
            return (_nullable(result) if len(others) < len(members) else result), {keyword}
        if keyword == "oneOf" and len(others) > 1:
            raise self.refuse(
                path,
                "uses the JSON Schema keyword 'oneOf' with several alternatives, which is not "
                "supported.",
            )
        if not others:
            return type(None), {keyword}
        result = _union([self.annotation(path, m, owner) for m in others])
        return (_nullable(result) if len(others) < len(members) else result), {keyword}

    def literal(self, path: str, node: Mapping[str, Any]) -> tuple[Any, set[str]]:
        values = [node["const"]] if "const" in node else self.literal_values(path, node["enum"])
        if "const" in node:
            self.literal_values(path, values)
        return typing.cast(Any, Literal)[tuple(values)], {"enum", "const", "type"}

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

    # -- scalars

    def string(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        fmt = self.text(path, node, "format")
        if fmt is None:
            return self.plain_string(path, node)
        if fmt == "decimal":
            return self.decimal_type(path, node), {"type", "format", *(k for k, _ in _BOUNDS)}
        if fmt in _FORMATS:
            return _FORMATS[fmt], {"type", "format"}
        if fmt == "email":
            return _with(EmailStr, self.lengths(path, node, "minLength", "maxLength")), {
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
        if not isinstance(exact, Mapping) or set(exact) - {k for k, _ in _BOUNDS}:
            raise self.refuse(
                path,
                f"has the {X_DECIMAL_BOUNDS!r} {exact!r}; it must map bound keywords to "
                "numbers written as text.",
            )
        metadata += self.bounds(
            path, node, lambda key, number: self.exact(path, key, exact, number)
        )
        return _with(decimal.Decimal, metadata)

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
        self.leftovers(path, number, {"type", *(k for k, _ in _BOUNDS)})
        pattern = str(next(m for m in members if m.get("type") == "string")["pattern"])
        return self.decimal_type(path, {**number, **_digits_from_pattern(pattern)})

    def number(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        base = int if node.get("type") == "integer" else float
        fmt = self.text(path, node, "format")
        if fmt is not None and fmt not in _WIDTH_FORMATS:
            raise self.refuse(path, f"uses the number format {fmt!r}, which is not supported.")
        found = self.bounds(path, node, lambda key, number: number)
        return _with(base, found), {"type", "format", *(k for k, _ in _BOUNDS)}

    def bounds(
        self, path: str, node: Mapping[str, Any], read: Callable[[str, int | float | None], Any]
    ) -> list[Any]:
        """The bounds of `node`, each value passed through `read(keyword, JSON number)`."""
        found: list[Any] = []
        for keyword, bound in _BOUNDS:
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

    # -- containers

    def array(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        consumed = {"type", "items", "prefixItems", "minItems", "maxItems", "uniqueItems"}
        if "prefixItems" in node:
            return self.fixed_tuple(path, node, owner), consumed
        item = self.annotation(path, node["items"], owner) if "items" in node else Any
        if node.get(X_PYTHON_TYPE) == "tuple":
            container: Any = typing.cast(Any, tuple)[item, ...]
        elif node.get("uniqueItems") is True:
            container = typing.cast(Any, set)[item]
        else:
            container = typing.cast(Any, list)[item]
        return _with(container, self.lengths(path, node, "minItems", "maxItems")), consumed

    def fixed_tuple(self, path: str, node: Mapping[str, Any], owner: str) -> Any:
        members = node["prefixItems"]
        if not isinstance(members, list) or node.get("items", False) not in (False, {"not": {}}):
            raise self.refuse(
                path, "has 'prefixItems' followed by further 'items', which is not supported."
            )
        if node.get("minItems", len(members)) != len(members) or node.get(
            "maxItems", len(members)
        ) != len(members):
            raise self.refuse(
                path, "has 'prefixItems' whose items may be left out, which is not supported."
            )
        return typing.cast(Any, tuple)[tuple(self.annotation(path, m, owner) for m in members)]

    def object(self, path: str, node: Mapping[str, Any], owner: str) -> tuple[Any, set[str]]:
        if "properties" in node:
            name = owner + _pascal(path.rsplit(".", 1)[-1])
            return self.model(name, node, prefix=path + ".", top=False), {
                "type",
                "properties",
                "required",
                "additionalProperties",
            }
        values = node.get("additionalProperties", True)
        if values is False:
            raise self.refuse(path, "is an object with no properties that allows no keys.")
        value = Any if values is True else self.annotation(path, values, owner)
        mapping = typing.cast(Any, dict)[str, value]
        return _with(mapping, self.lengths(path, node, "minProperties", "maxProperties")), {
            "type",
            "additionalProperties",
            "minProperties",
            "maxProperties",
        }


def _with(annotation: Any, metadata: list[Any]) -> Any:
    return typing.cast(Any, Annotated)[(annotation, *metadata)] if metadata else annotation


def _union(annotations: list[Any]) -> Any:
    return annotations[0] if len(annotations) == 1 else typing.cast(Any, Union)[tuple(annotations)]


def _nullable(annotation: Any) -> Any:
    return typing.cast(Any, Union)[annotation, None]


def _member_names(values: list[Any]) -> list[str]:
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


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _is_pydantic_decimal(members: list[Any]) -> bool:
    """Whether an anyOf is Pydantic's default Decimal form: a number, or a digits-only string."""
    kinds = sorted(str(m.get("type")) for m in members if isinstance(m, Mapping))
    strings = [m for m in members if isinstance(m, Mapping) and m.get("type") == "string"]
    return (
        kinds == ["number", "string"]
        and set(strings[0]) <= {"type", "pattern"}
        and str(strings[0].get("pattern", "")).startswith(_PYDANTIC_DECIMAL_PREFIX)
    )


def _digits_from_pattern(pattern: str) -> dict[str, int]:
    """max_digits and decimal_places, read back from the pattern Pydantic derives from them."""
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


# --------------------------------------------------------------------------- differences


def schema_fields(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each top-level property's schema, with `$ref`s replaced by what they refer to."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return {
        name: _resolve(node, defs, frozenset())
        for name, node in schema.get("properties", {}).items()
    }


def _resolve(node: Any, defs: Mapping[str, Any], seen: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs, seen) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs and ref not in seen:
        target = defs[ref.rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **siblings}, defs, seen | {ref})
    return {key: _resolve(value, defs, seen) for key, value in node.items()}


@dataclass(frozen=True)
class SchemaDiff:
    """How a model's fields differ between two stored schemas."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: field -> (old schema, new schema), refs resolved.
    changed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    #: Added fields that are required and have no default: existing records lack a value.
    added_required: tuple[str, ...] = ()
    #: Changed fields whose type changed (becoming nullable does not count), or that became
    #: required.
    retyped: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def is_additive(self) -> bool:
        """Whether existing records stay valid and stored: nothing removed, retyped or required."""
        return not (self.removed or self.retyped or self.added_required)

    def describe(self) -> str:
        """The difference in words, e.g. "removed: price; changed: name (string -> integer)"."""
        if self.is_empty:
            return "no changes"
        parts = []
        if self.removed:
            parts.append("removed: " + ", ".join(self.removed))
        if self.changed:
            parts.append("changed: " + ", ".join(self.describe_change(n) for n in self.changed))
        optional = [name for name in self.added if name not in self.added_required]
        if optional:
            parts.append("added: " + ", ".join(optional))
        if self.added_required:
            parts.append("added (required, no default): " + ", ".join(self.added_required))
        return "; ".join(parts)

    def describe_change(self, name: str) -> str:
        old, new = self.changed[name]
        old_type, new_type = _type_label(old), _type_label(new)
        if old_type != new_type:
            return f"{name} ({old_type} -> {new_type})"
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"{name} ({', '.join(keys)})"


def diff_schemas(old: Mapping[str, Any], new: Mapping[str, Any]) -> SchemaDiff:
    """The difference between the stored schemas `old` and `new` of one model (a field's
    index keywords change its indexes, not its column or its values, so they are left out)."""
    before, after = _without_index_keys(schema_fields(old)), _without_index_keys(schema_fields(new))
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    changed = {n: (before[n], after[n]) for n in before if n in after and before[n] != after[n]}
    added = tuple(n for n in after if n not in before)
    retyped = tuple(
        n
        for n, (was, now) in changed.items()
        if not _same_or_wider(_type_label(was), _type_label(now))
        or (n in new_required and n not in old_required)
    )
    return SchemaDiff(
        added=added,
        removed=tuple(n for n in before if n not in after),
        changed=changed,
        added_required=tuple(n for n in added if n in new_required),
        retyped=retyped,
    )


def _without_index_keys(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {k: v for k, v in node.items() if k not in INDEX_KEYS}
        if isinstance(node, Mapping) else node
        for name, node in fields.items()
    }


def _only_vendor_keys(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k.startswith("x-") and k not in _OUR_KEYS for k in value
    )


def _same_or_wider(old: str, new: str) -> bool:
    """Whether a field keeps its type, perhaps now also allowing null (still the same column)."""
    return old == new or set(new.split("|")) == set(old.split("|")) | {"null"}


def _type_label(node: Any) -> str:
    """A short name of the type a resolved node describes, ignoring its constraints."""
    if not isinstance(node, Mapping):
        return "any"
    for keyword in ("anyOf", "oneOf"):
        if isinstance(node.get(keyword), list):
            others = [m for m in node[keyword] if _type_label(m) != "null"]
            if _is_pydantic_decimal(others):
                return "decimal" if len(others) == len(node[keyword]) else "decimal|null"
            return "|".join(_type_label(m) for m in node[keyword])
    if "enum" in node or "const" in node:
        return "choice"
    kind = node.get("type")
    if isinstance(kind, list):
        return "|".join(_type_label({**node, "type": k}) for k in kind)
    if kind == "array":
        container = node.get(X_PYTHON_TYPE) or ("set" if node.get("uniqueItems") else "array")
        return f"{container}<{_type_label(node.get('items'))}>"
    if kind == "object" and "properties" not in node:
        return f"dict<{_type_label(node.get('additionalProperties'))}>"
    fmt = node.get("format")
    if fmt == "decimal":
        return "decimal"
    return f"{kind}/{fmt}" if fmt and fmt not in _WIDTH_FORMATS else str(kind or "any")
