"""What a Pydantic model may use and still be stored: `StorableCheck` refuses the rest.

A registered model travels to workers as JSON Schema, so Python code (validators, serializers,
computed fields, overridden BaseModel methods, Enum hooks), options JSON Schema does not record
(aliases, `exclude`, strict or transforming string options, behaviour-changing `model_config`),
arbitrary classes, recursive models, non-finite bounds, defaults that are not JSON and default
factories that produce a fresh value on each call are refused, each naming the field.
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
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    StringConstraints,
    TypeAdapter,
    UrlConstraints,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError, PydanticUndefined

from ..errors import InvalidSchema
from ..names import validate_field_name
from ..types import FieldKind, classify
from .config_keys import HARMLESS_CONFIG, leaves_behaviour_alone
from .keywords import RESERVED_PREFIX, is_user_vendor_key

_SCALARS: frozenset[Any] = frozenset(
    {str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, datetime.time,
     uuid.UUID}
)  # fmt: skip
#: Factories that return the same empty value on every call, so storing one result is exact.
_CONSTANT_FACTORIES: frozenset[Any] = frozenset(
    {list, dict, set, frozenset, tuple, str, int, float, bool}
)
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
#: Dumps NaN and infinity as themselves, so that the strict `json.dumps` below refuses them.
_STRICT_JSON: TypeAdapter[Any] = TypeAdapter(Any, config=ConfigDict(ser_json_inf_nan="constants"))
_NO_CODE = "validators are Python code and cannot travel to workers through JSON Schema."
_TIME_KINDS = frozenset({FieldKind.DATE, FieldKind.DATETIME, FieldKind.TIME, FieldKind.UUID})


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


class StorableCheck:
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
            raise self.refuse(prefix + name, RESERVED_PREFIX)

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
            if leaves_behaviour_alone(key, value):
                continue
            if key == "json_schema_extra" and not prefix and _only_user_vendor_keys(value):
                continue  # the model's own x- keys (composite indexes) are stored as they are
            raise InvalidSchema(
                f"The {self.where(prefix)} {self.model_name!r} sets model_config[{key!r}] to "
                f"{value!r}, which may change validation or dumps in a way JSON Schema does not "
                f"record; only {', '.join(sorted(HARMLESS_CONFIG))} may be set (others only to "
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
        if callable(extra) or any(not is_user_vendor_key(k) for k in extra or {}):
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


def _only_user_vendor_keys(value: Any) -> bool:
    return isinstance(value, Mapping) and all(is_user_vendor_key(k) for k in value)
