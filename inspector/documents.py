"""Models described by documents: a JSON Schema, or a component schema of an OpenAPI 3 document.

Properties become fields (renamed to safe names where needed, the original kept as the title
and in the field map), `required` and `null` alternatives decide nullability, formats decide
kinds (date, date-time, time, uuid, email, uri, our decimal), and lengths, bounds, patterns,
enums, defaults and descriptions are kept. Local `$ref`s (`#/$defs/...`, `#/definitions/...`,
`#/components/schemas/...`) are followed. What a model cannot hold (a union of several
schemas, several types) becomes `any`, with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import MalformedSource, ResourceNotFound, UnreadableEncoding, UnsupportedResource
from .resources import Resource
from .spec import FieldSpec, SchemaReader

__all__ = ["read_document", "root_schema"]


def read_document(resource: Resource) -> dict[str, Any]:
    """The JSON (or, for OpenAPI, YAML) document at the resource's location."""
    path = Path(resource.location)
    try:
        text = path.read_text(encoding=resource.options.get("encoding", "utf-8-sig"))
    except FileNotFoundError:
        raise ResourceNotFound(f"No file at {resource.location!r}.") from None
    except UnicodeDecodeError as exc:
        raise UnreadableEncoding(
            f"{resource.location!r} does not decode as {exc.encoding}: {exc.reason}."
        ) from None
    document = _parse(text, path)
    if not isinstance(document, dict):
        raise MalformedSource(f"{resource.location!r} holds no JSON object.")
    return document


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UnsupportedResource(
                "Reading a YAML OpenAPI document needs PyYAML (pip install pyyaml)."
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MalformedSource(f"{str(path)!r} is not valid YAML: {exc}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedSource(
            f"{str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}."
        ) from None


def root_schema(resource: Resource, document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(its name, the object schema) the resource describes."""
    if resource.kind == "json_schema":
        title = document.get("title")
        return (title if isinstance(title, str) else resource.path.stem), document
    component = resource.table or resource.options.get("component")
    schemas = document.get("components", {}).get("schemas", {})
    if not isinstance(schemas, dict) or not schemas:
        raise ResourceNotFound(f"{resource.location!r} has no components.schemas.")
    if component is None:
        if len(schemas) != 1:
            raise UnsupportedResource(
                f"{resource.location!r} has {len(schemas)} component schemas; name one with "
                f"'table' (one of {sorted(schemas)}).",
                components=sorted(schemas),
            )
        component = next(iter(schemas))
    if component not in schemas:
        raise ResourceNotFound(
            f"{resource.location!r} has no component schema {component!r}; it has "
            f"{sorted(schemas)}.",
            components=sorted(schemas),
        )
    return component, schemas[component]


def document_fields(
    resource: Resource, document: dict[str, Any]
) -> tuple[str, dict[str, FieldSpec], list[str]]:
    """(name, source property -> spec, warnings) of the model the document describes."""
    name, schema = root_schema(resource, document)
    reader = SchemaReader(document)
    spec = reader.spec(schema, name)
    if spec.kind != "object" or not spec.properties:
        raise MalformedSource(
            f"{name!r} in {resource.location!r} is not an object schema with properties."
        )
    return name, spec.properties, reader.warnings
