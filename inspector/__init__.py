"""The inspector: read a data source and propose a model for the registry.

    import inspector
    inspection = inspector.inspect("cars.csv")          # an Inspection (Pydantic)
    document = inspection.model_dump(mode="json")       # the interchange document
    Car = inspection.model()                            # the Pydantic model class

    with inspector.open_rows("cars.csv", field_map=inspection.field_map,
                             options=inspection.source.options) as rows:
        parse = inspection.row_parser().parse
        for row in rows:
            record = parse(row.values)                   # {field: typed value}

A resource is a file path, or `{"kind", "location", "table"?, "options"?}` (an SQL source is a
SQLAlchemy URL plus a table name). This package imports nothing from `registry`, `tasks` or
`workers`; the registry registers inspections as documents.
"""

from .errors import (
    FieldTooLarge,
    InspectorError,
    InvalidInspection,
    MalformedSource,
    RaggedRow,
    ResourceNotFound,
    SourceUnavailable,
    UnknownSourceField,
    UnreadableEncoding,
    UnsupportedResource,
)
from .formats import NULL_VALUES, RowParser, parse_text
from .infer import InferenceOptions
from .inspecting import DEFAULT_SAMPLE_ROWS, XInspector, inspect
from .inspection import FieldProvenance, Inspection, InspectorInfo, SourceInfo
from .names import safe_field_names
from .readers import RowReader, SourceRow, open_rows
from .resources import Resource

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "FieldProvenance",
    "FieldTooLarge",
    "InferenceOptions",
    "Inspection",
    "InspectorError",
    "InspectorInfo",
    "InvalidInspection",
    "MalformedSource",
    "NULL_VALUES",
    "RaggedRow",
    "Resource",
    "ResourceNotFound",
    "RowParser",
    "RowReader",
    "SourceInfo",
    "SourceRow",
    "SourceUnavailable",
    "UnknownSourceField",
    "UnreadableEncoding",
    "UnsupportedResource",
    "XInspector",
    "inspect",
    "open_rows",
    "parse_text",
    "safe_field_names",
]
