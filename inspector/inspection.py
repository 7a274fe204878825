"""The inspection: one JSON document, reviewed and edited before a model is registered.

    {"name", "source": {"kind", "location", "table"?, "sha256"?, "rows_sampled", "rows_total"?,
                        "options"},
     "json_schema", "field_map": {source name: field}, "primary_key": [field, ...],
     "provenance": {field: {"source_field", "inferred_type", "confidence", "null_fraction",
                            "distinct", "min"?, "max"?, "format"?, "examples"?, ...}},
     "warnings": [...], "inspector": {"name", "version"}}

`Inspection.model_dump(mode="json")` writes it and `Inspection.from_document` reads it back
(raising `InvalidInspection` naming what is wrong). `source.options` holds how the source was
read (encoding, delimiter, header, null values), so `open_rows(resource, options=...)` reads it
the same way again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from .errors import InvalidInspection
from .formats import NULL_VALUES, RowParser
from .spec import KINDS, build_model, specs_from_model_schema

__all__ = ["FieldProvenance", "Inspection", "InspectorInfo", "SourceInfo"]

INSPECTOR_NAME = "dmr-inspector"
INSPECTOR_VERSION = "1.0"


class SourceInfo(BaseModel):
    """Where the rows came from and how much of them inference saw."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    location: str
    table: str | None = None
    sha256: str | None = None
    rows_sampled: int = Field(ge=0)
    rows_total: int | None = Field(default=None, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def null_values(self) -> tuple[str, ...]:
        found = self.options.get("null_values")
        return tuple(found) if isinstance(found, list | tuple) else NULL_VALUES


class FieldProvenance(BaseModel):
    """What inference saw of one field (None where the source gave no rows to see)."""

    model_config = ConfigDict(extra="allow")

    source_field: str
    inferred_type: str
    confidence: float | None = Field(default=None, ge=0, le=1)
    null_fraction: float | None = Field(default=None, ge=0, le=1)
    distinct: int | None = Field(default=None, ge=0)
    min: Any = None
    max: Any = None
    format: str | None = None
    examples: list[Any] | None = None
    unique: bool | None = None
    max_length: int | None = None

    @model_serializer(mode="wrap")
    def _without_unknowns(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The optional facts are left out rather than written as null, as the document shows.
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}

    @model_validator(mode="after")
    def _known_type(self) -> FieldProvenance:
        if self.inferred_type not in KINDS:
            raise ValueError(
                f"inferred_type {self.inferred_type!r} is not one of {', '.join(KINDS)}"
            )
        return self


class InspectorInfo(BaseModel):
    name: str = INSPECTOR_NAME
    version: str = INSPECTOR_VERSION


class Inspection(BaseModel):
    """A proposed model for a resource; see the module docstring for the document."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: SourceInfo
    json_schema: dict[str, Any]
    field_map: dict[str, str]
    primary_key: list[str] = Field(default_factory=list)
    provenance: dict[str, FieldProvenance]
    warnings: list[str] = Field(default_factory=list)
    inspector: InspectorInfo = Field(default_factory=InspectorInfo)

    @model_validator(mode="after")
    def _consistent(self) -> Inspection:
        properties = self.json_schema.get("properties")
        if not isinstance(properties, dict):
            raise ValueError("json_schema must be an object schema with properties")
        for what, names in (
            ("field_map", self.field_map.values()),
            ("primary_key", self.primary_key),
            ("provenance", self.provenance),
        ):
            unknown = sorted(set(names) - set(properties))
            if unknown:
                raise ValueError(f"{what} names fields {unknown} that json_schema lacks")
        return self

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | str | bytes) -> Inspection:
        """Read an inspection document (a mapping or its JSON). Raises `InvalidInspection`."""
        try:
            if isinstance(document, str | bytes):
                return cls.model_validate_json(document)
            return cls.model_validate(document)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, error['loc'])) or 'document'}: {error['msg']}"
                for error in exc.errors()[:5]
            )
            raise InvalidInspection(f"The inspection document is malformed: {problems}.") from None

    def document(self) -> dict[str, Any]:
        """The interchange document (JSON-ready)."""
        return self.model_dump(mode="json")

    def model(self, name: str | None = None) -> type[BaseModel]:
        """The Pydantic model class the inspection proposes (named `name` or its own)."""
        return build_model(name or self.name, specs_from_model_schema(self.json_schema))

    def row_parser(self) -> RowParser:
        """Reads rows (keyed by field, as `open_rows(..., field_map=...)` gives them)."""
        provenance = {key: value.model_dump() for key, value in self.provenance.items()}
        return RowParser(provenance, self.source.null_values)
