"""A Pydantic model rebuilt from JSON Schema: `model_from_schema`.

Besides what `model_to_schema` stores, it reads JSON Schema written by other producers: `type`
lists, OpenAPI's `nullable`, Pydantic's own Decimal form, legacy `definitions`, inline nested
objects and draft-4 boolean `exclusiveMinimum`. A keyword that changes validation and has no
Pydantic equivalent (`oneOf` with several alternatives, `patternProperties`, `if`, `not`, ...)
is refused; purely descriptive keywords are ignored. Every rebuilt model forbids unknown fields,
because a record has no column to keep them in.
"""

from __future__ import annotations

import enum
import json
import re
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, SchemaError

from ..errors import InvalidSchema, RegistryError
from ..names import validate_field_name, validate_model_name
from .depth import check_schema_depth, too_deep
from .enums import enum_from_values
from .keywords import RESERVED_PREFIX, X_PYTHON_TYPE, user_vendor_keys
from .pydantic_decimal import is_pydantic_decimal
from .scalars import ScalarReader
from .typing_forms import nullable, union_of, with_metadata


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
        raise too_deep(model_name) from None


class _Builder(ScalarReader):
    """Turns one schema's nodes into annotations; nested models are built once per $defs entry."""

    def __init__(self, model_name: str, schema: Mapping[str, Any]) -> None:
        super().__init__(model_name)
        self.defs: dict[str, Any] = {**schema.get("definitions", {}), **schema.get("$defs", {})}
        self.built: dict[str, Any] = {}
        self.building: set[str] = set()

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
        vendor = user_vendor_keys(node)
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
            raise self.refuse(prefix + name, RESERVED_PREFIX)
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
            annotation, default = nullable(annotation), None
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
        extra = user_vendor_keys(node)
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
            annotation = nullable(annotation)
        return annotation


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
        result = union_of(annotations)
        return (nullable(result) if "null" in kinds else result), consumed

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
        description = node.get("description")
        try:
            return enum_from_values(
                str(node.get("title", key)),
                values,
                plain=node.get(X_PYTHON_TYPE) == "enum",
                description=description if isinstance(description, str) else None,
            )
        except (TypeError, ValueError) as exc:
            raise self.refuse(path, f"is an enum {key!r} that Python cannot build: {exc}") from exc

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
        if is_pydantic_decimal(others):  # Pydantic's `Decimal | None` adds a null branch
            result = self.pydantic_decimal(path, others)
            return (nullable(result) if len(others) < len(members) else result), {keyword}
        if keyword == "oneOf" and len(others) > 1:
            raise self.refuse(
                path,
                "uses the JSON Schema keyword 'oneOf' with several alternatives, which is not "
                "supported.",
            )
        if not others:
            return type(None), {keyword}
        result = union_of([self.annotation(path, m, owner) for m in others])
        return (nullable(result) if len(others) < len(members) else result), {keyword}

    def literal(self, path: str, node: Mapping[str, Any]) -> tuple[Any, set[str]]:
        values = [node["const"]] if "const" in node else self.literal_values(path, node["enum"])
        if "const" in node:
            self.literal_values(path, values)
        return typing.cast(Any, Literal)[tuple(values)], {"enum", "const", "type"}

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
        return with_metadata(container, self.lengths(path, node, "minItems", "maxItems")), consumed

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
        return with_metadata(mapping, self.lengths(path, node, "minProperties", "maxProperties")), {
            "type",
            "additionalProperties",
            "minProperties",
            "maxProperties",
        }

def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))

