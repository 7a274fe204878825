"""Models as stored JSON Schema, and models rebuilt from it (see `building`)."""

from .building import SchemaDiff, diff_schemas, model_from_schema, model_to_schema, schema_fields

__all__ = ["SchemaDiff", "diff_schemas", "model_from_schema", "model_to_schema", "schema_fields"]
