"""A proposed field, and the two forms it takes: JSON Schema and a Pydantic annotation.

Every source (sampled rows, SQL reflection, a JSON Schema or OpenAPI document) is turned into
`FieldSpec`s; `model_schema` writes them as the model's JSON Schema, in the subset the registry
stores (its vendor keywords included: a decimal is `{"type": "string", "format": "decimal"}`),
and `build_model` makes the Pydantic class. `specs_from_model_schema` reads such a schema back,
so a reviewed and edited inspection still yields its model.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, EmailStr, Field, create_model

from .errors import InvalidInspection
from .names import safe_field_names

__all__ = ["KINDS", "FieldSpec", "build_model", "model_schema", "specs_from_model_schema"]

#: The `inferred_type`s an inspection uses.
KINDS = (
    "boolean", "integer", "decimal", "number", "date", "datetime", "datetime_tz", "time",
    "uuid", "email", "url", "string", "enum", "object", "array", "any",
)  # fmt: skip
_STRING_FORMATS = {
    "date": "date",
    "datetime": "date-time",
    "datetime_tz": "date-time",
    "time": "time",
    "uuid": "uuid",
    "email": "email",
    "url": "uri",
    "decimal": "decimal",
}
_KIND_OF_FORMAT = {
    "date": "date",
    "date-time": "datetime",
    "time": "time",
    "uuid": "uuid",
    "email": "email",
    "idn-email": "email",
    "uri": "url",
    "url": "url",
    "iri": "url",
    "decimal": "decimal",
}
_PYTHON_TYPES: dict[str, Any] = {
    "boolean": bool,
    "integer": int,
    "number": float,
    "decimal": decimal.Decimal,
    "date": datetime.date,
    "datetime": datetime.datetime,
    "datetime_tz": datetime.datetime,
    "time": datetime.time,
    "uuid": uuid.UUID,
    "email": EmailStr,
    "url": AnyUrl,
    "string": str,
    "any": Any,
}
MISSING: Any = object()


@dataclass
class FieldSpec:
    """What a field holds: its kind and the constraints the source shows."""

    kind: str
    nullable: bool = False
    enum: list[Any] | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_digits: int | None = None
    decimal_places: int | None = None
    title: str | None = None
    description: str | None = None
    items: FieldSpec | None = None
    properties: dict[str, FieldSpec] | None = None
    required: list[str] = field(default_factory=list)
    default: Any = MISSING

    @property
    def is_required(self) -> bool:
        return not self.nullable and self.default is MISSING


# --------------------------------------------------------------------------- JSON Schema


def model_schema(name: str, fields: Mapping[str, FieldSpec]) -> dict[str, Any]:
    """The model's JSON Schema: an object of `fields`, unknown fields forbidden."""
    return {
        "title": name,
        "type": "object",
        "properties": {key: field_schema(spec) for key, spec in fields.items()},
        "required": [key for key, spec in fields.items() if spec.is_required],
        "additionalProperties": False,
    }


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema = _base_schema(spec)
    if spec.nullable and spec.kind != "any":
        schema = {"anyOf": [schema, {"type": "null"}]}
    if spec.default is not MISSING:
        schema["default"] = spec.default
    elif spec.nullable:
        schema["default"] = None
    described = {
        key: value
        for key, value in (("title", spec.title), ("description", spec.description))
        if value
    }
    return {**described, **schema}


def _base_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "enum":
        values = spec.enum or []
        kind = "integer" if all(type(value) is int for value in values) else "string"
        return {"type": kind, "enum": list(values)}
    if spec.kind == "any":
        return {}
    if spec.kind == "object":
        return _object_schema(spec)
    if spec.kind == "array":
        schema: dict[str, Any] = {"type": "array"}
        if spec.items is not None:
            schema["items"] = field_schema(spec.items)
        return schema
    if spec.kind in ("integer", "number", "boolean"):
        schema = {"type": spec.kind}
    else:
        schema = {"type": "string"}
        if spec.kind in _STRING_FORMATS:
            schema["format"] = _STRING_FORMATS[spec.kind]
    return {**schema, **_constraints(spec)}


def _object_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.properties is None:
        return {"type": "object"}
    return {
        "type": "object",
        "properties": {key: field_schema(value) for key, value in spec.properties.items()},
        "required": [key for key, value in spec.properties.items() if value.is_required],
        "additionalProperties": False,
    }


def _constraints(spec: FieldSpec) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if spec.kind in ("integer", "number"):
        bounds = (("minimum", spec.minimum), ("maximum", spec.maximum))
        found.update({key: value for key, value in bounds if value is not None})
    if spec.kind == "decimal":
        if spec.max_digits is not None:
            found["x-max-digits"] = spec.max_digits
        if spec.decimal_places is not None:
            found["x-decimal-places"] = spec.decimal_places
    if spec.kind == "string":
        for key, value in (
            ("maxLength", spec.max_length),
            ("minLength", spec.min_length),
            ("pattern", spec.pattern),
        ):
            if value is not None:
                found[key] = value
    return found


# --------------------------------------------------------------------------- reading back


@dataclass
class SchemaReader:
    """Reads JSON Schema properties into specs, resolving local `$ref`s; collects warnings."""

    document: Mapping[str, Any]
    warnings: list[str] = field(default_factory=list)

    def spec(self, schema: Any, where: str, depth: int = 0) -> FieldSpec:
        if depth > 32:
            raise InvalidInspection(f"{where}: the schema nests deeper than 32 levels.")
        if not isinstance(schema, Mapping):
            if schema is True or schema == {}:
                return FieldSpec("any", nullable=True)
            raise InvalidInspection(f"{where}: a schema must be an object, not {schema!r}.")
        schema = self._resolve(schema, where)
        spec = self._spec_of(schema, where, depth)
        spec.title = schema.get("title") if isinstance(schema.get("title"), str) else spec.title
        description = schema.get("description")
        spec.description = description if isinstance(description, str) else spec.description
        if "default" in schema:
            spec.default = schema["default"]
        if schema.get("nullable") is True:
            spec.nullable = True
        return spec

    def _resolve(self, schema: Mapping[str, Any], where: str) -> Mapping[str, Any]:
        seen: set[str] = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                raise InvalidInspection(f"{where}: cannot follow $ref {ref!r} (local refs only).")
            seen.add(ref)
            target: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise InvalidInspection(f"{where}: $ref {ref!r} points at nothing.")
                target = target[part]
            extra = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **extra}
        return schema

    def _spec_of(self, schema: Mapping[str, Any], where: str, depth: int) -> FieldSpec:
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list):
            return self._union(alternatives, where, depth)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            return self.spec(all_of[0], where, depth + 1)
        kind = schema.get("type")
        nullable = False
        if isinstance(kind, list):
            nullable = "null" in kind
            kinds = [value for value in kind if value != "null"]
            kind = kinds[0] if len(kinds) == 1 else None
            if len(kinds) > 1:
                self.warnings.append(f"{where}: a field of several types {kinds} is read as any.")
        spec = self._typed(schema, kind, where, depth)
        spec.nullable = spec.nullable or nullable
        return spec

    def _union(self, alternatives: list[Any], where: str, depth: int) -> FieldSpec:
        real = [item for item in alternatives if not _is_null(item)]
        if len(real) == 1:
            spec = self.spec(real[0], where, depth + 1)
            spec.nullable = spec.nullable or len(real) < len(alternatives)
            return spec
        self.warnings.append(f"{where}: a union of {len(real)} schemas is read as any.")
        return FieldSpec("any", nullable=True)

    def _typed(self, schema: Mapping[str, Any], kind: Any, where: str, depth: int) -> FieldSpec:
        if "enum" in schema or "const" in schema:
            values = list(schema["enum"]) if "enum" in schema else [schema["const"]]
            values = [value for value in values if value is not None]
            same_kind = all(isinstance(value, str) for value in values) or all(
                type(value) is int for value in values
            )
            if values and same_kind:
                return FieldSpec("enum", enum=values, nullable=None in schema.get("enum", []))
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, where, depth)
        if kind == "array":
            items = schema.get("items")
            item_spec = self.spec(items, f"{where}[]", depth + 1) if items is not None else None
            return FieldSpec("array", items=item_spec)
        if kind in ("integer", "number"):
            return FieldSpec(
                kind, minimum=_bound(schema, "minimum"), maximum=_bound(schema, "maximum")
            )
        if kind == "boolean":
            return FieldSpec("boolean")
        if kind == "string":
            return self._string(schema)
        if kind == "null":
            return FieldSpec("any", nullable=True)
        return FieldSpec("any", nullable=True)

    def _string(self, schema: Mapping[str, Any]) -> FieldSpec:
        found = _KIND_OF_FORMAT.get(str(schema.get("format")))
        if found == "decimal":
            return FieldSpec(
                "decimal",
                max_digits=schema.get("x-max-digits"),
                decimal_places=schema.get("x-decimal-places"),
            )
        if found is not None:
            return FieldSpec(found)
        return FieldSpec(
            "string",
            max_length=schema.get("maxLength"),
            min_length=schema.get("minLength"),
            pattern=schema.get("pattern"),
        )

    def _object(self, schema: Mapping[str, Any], where: str, depth: int) -> FieldSpec:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return FieldSpec("object")
        if depth > 0 and safe_field_names(properties) != {key: key for key in properties}:
            self.warnings.append(
                f"{where}: nested keys {sorted(properties)} are not all field names; the "
                "object is kept free-form."
            )
            return FieldSpec("object")
        required = schema.get("required") or []
        specs: dict[str, FieldSpec] = {}
        for key, value in properties.items():
            spec = self.spec(value, f"{where}.{key}", depth + 1)
            if key not in required and spec.default is MISSING:
                spec.nullable = True
            specs[key] = spec
        return FieldSpec("object", properties=specs)


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "null"


def _bound(schema: Mapping[str, Any], key: str) -> int | float | None:
    value = schema.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def specs_from_model_schema(schema: Mapping[str, Any]) -> dict[str, FieldSpec]:
    """The fields of a model's JSON Schema (an inspection's `json_schema`)."""
    reader = SchemaReader(schema)
    spec = reader.spec(schema, "json_schema")
    if spec.kind != "object" or spec.properties is None:
        raise InvalidInspection("json_schema must be an object schema with properties.")
    required = set(schema.get("required") or [])
    for key, value in spec.properties.items():
        value.nullable = value.nullable and (key not in required or value.nullable)
    return spec.properties


# --------------------------------------------------------------------------- Pydantic


def build_model(name: str, fields: Mapping[str, FieldSpec]) -> type[BaseModel]:
    """The Pydantic model class of `fields`; unknown fields are forbidden, as the registry's."""
    definitions: dict[str, Any] = {
        key: (_annotation(spec, f"{name}{_camel(key)}"), _field_info(spec))
        for key, spec in fields.items()
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **definitions)


def _field_info(spec: FieldSpec) -> Any:
    default = spec.default if spec.default is not MISSING else (None if spec.nullable else ...)
    return Field(default, title=spec.title, description=spec.description)


def _annotation(spec: FieldSpec, nested_name: str) -> Any:
    base = _base_annotation(spec, nested_name)
    return base | None if spec.nullable and spec.kind != "any" else base


def _base_annotation(spec: FieldSpec, nested_name: str) -> Any:
    if spec.kind == "enum":
        return Literal[tuple(spec.enum or [])]
    if spec.kind == "object":
        if spec.properties is None:
            return dict[str, Any]
        return build_model(nested_name, spec.properties)
    if spec.kind == "array":
        item = Any if spec.items is None else _annotation(spec.items, nested_name + "Item")
        return list[item]  # type: ignore[valid-type]
    python_type = _PYTHON_TYPES[spec.kind]
    constraints = _field_constraints(spec)
    return Annotated[python_type, Field(**constraints)] if constraints else python_type


def _field_constraints(spec: FieldSpec) -> dict[str, Any]:
    pairs = {
        "ge": spec.minimum if spec.kind in ("integer", "number") else None,
        "le": spec.maximum if spec.kind in ("integer", "number") else None,
        "max_length": spec.max_length if spec.kind == "string" else None,
        "min_length": spec.min_length if spec.kind == "string" else None,
        "pattern": spec.pattern if spec.kind == "string" else None,
        "max_digits": spec.max_digits if spec.kind == "decimal" else None,
        "decimal_places": spec.decimal_places if spec.kind == "decimal" else None,
    }
    return {key: value for key, value in pairs.items() if value is not None}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
