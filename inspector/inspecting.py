"""`inspect(resource)`: read a resource and propose a model, as an `Inspection`.

Rows (CSV/TSV, JSON Lines, JSON arrays) are sampled, the first `sample_rows` of them (the whole
source when it is smaller, and then `rows_total` is known), and each column inferred
(`infer`). SQL tables are reflected (`sql`) and Parquet files typed by their schema
(`parquet`), both sampled for provenance. JSON Schema and OpenAPI
documents are read (`documents`). Either way source names are mapped to safe field names, a
primary key is proposed, and the sha256 of a file is recorded so an import can tell it is
reading the same bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from itertools import islice
from typing import Any

from pydantic import BaseModel

from .documents import document_fields, read_document
from .errors import InvalidInspection, MalformedSource
from .formats import NULL_VALUES
from .infer import ColumnResult, Examples, InferenceOptions, infer_column
from .inspection import FieldProvenance, Inspection, SourceInfo
from .names import safe_field_names, safe_model_name
from .readers import DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_ROW_SIZE, open_rows
from .resources import Resource, ResourceLike
from .spec import FieldSpec, model_schema

__all__ = ["DEFAULT_SAMPLE_ROWS", "XInspector", "inspect"]

DEFAULT_SAMPLE_ROWS = 20_000
#: Names that mark a column as the source's own key, preferred as the primary key.
_KEY_NAMES = ("id", "uuid", "key", "code")
_KEY_KINDS = ("integer", "uuid", "string", "email")
_HASH_CHUNK = 1024 * 1024


def inspect(
    resource: ResourceLike,
    name: str | None = None,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    confidence: float = 0.95,
    enum_max_distinct: int = 10,
    examples: Examples = "safe",
    options: Mapping[str, Any] | None = None,
) -> Inspection:
    """Read `resource` and propose a model named `name` (default: from the file or table).

    `sample_rows` rows are read for inference; `confidence` is the share of a column's values
    a type must read to be kept; text columns with at most `enum_max_distinct` values become
    enums; `examples` is "safe" (none for fields that look sensitive), "all" or "none";
    `options` override the resource's reading options (encoding, delimiter, header,
    null_values, ...). Raises the errors of `inspector.errors`.
    """
    found = Resource.of(resource)
    if options:
        found = Resource(found.kind, found.location, found.table, {**found.options, **options})
    if sample_rows < 1:
        raise InvalidInspection(f"sample_rows must be at least 1, not {sample_rows}.")
    null_values = found.options.get("null_values")
    inference = InferenceOptions(
        confidence=confidence,
        enum_max_distinct=enum_max_distinct,
        examples=examples,
        null_values=NULL_VALUES if null_values is None else tuple(null_values),
    )
    if found.kind in ("json_schema", "openapi"):
        return _inspect_document(found, name)
    return _inspect_rows(found, name, sample_rows, inference)


class XInspector:
    """The specification's inspector: `await XInspector(resource).generate_model(...)`."""

    def __init__(
        self, resource: ResourceLike, **settings: Any
    ) -> None:
        self.resource = Resource.of(resource)
        self.settings = settings
        self.inspection: Inspection | None = None

    async def inspect(self, name: str | None = None) -> Inspection:
        """The inspection (read in a thread, so the event loop keeps serving)."""
        if self.inspection is None or (name is not None and name != self.inspection.name):
            self.inspection = await asyncio.to_thread(inspect, self.resource, name, **self.settings)
        return self.inspection

    async def generate_model(self, collection_name: str | None = None) -> type[BaseModel]:
        """The Pydantic model class for the resource, named `collection_name` if given."""
        inspection = await self.inspect(collection_name)
        return inspection.model(collection_name)


# --------------------------------------------------------------------------- rows


def _inspect_rows(
    resource: Resource, name: str | None, sample_rows: int, inference: InferenceOptions
) -> Inspection:
    with open_rows(resource) as reader:
        rows = iter(reader)
        sampled = list(islice(rows, sample_rows))
        exhausted = next(rows, None) is None
        read_options = dict(reader.options)
        columns = list(reader.columns) if reader.columns is not None else _keys(sampled)
    samples = {column: [row.values.get(column) for row in sampled] for column in columns}
    rows_total: int | None
    if resource.kind == "sql":
        results = _reflect(resource, samples, inference)
        rows_total = _count_rows(resource)
    elif resource.kind == "parquet":
        from .parquet import parquet_columns

        results, rows_total = parquet_columns(resource, samples, inference)
    else:
        results = {column: infer_column(column, samples[column], inference) for column in columns}
        rows_total = len(sampled) if exhausted else None
    source = SourceInfo(
        **resource.describe(),
        sha256=_sha256(resource) if resource.is_file else None,
        rows_sampled=len(sampled),
        rows_total=rows_total,
        options=_recorded_options(read_options, inference),
    )
    notes = (
        []
        if exhausted
        else [f"Inferred from the first {len(sampled)} rows; enums and unique keys hold for those."]
    )
    return _assemble(name or _default_name(resource), source, results, notes)


def _keys(sampled: list[Any]) -> list[str]:
    keys: dict[str, None] = {}
    for row in sampled:
        keys.update(dict.fromkeys(row.values))
    return list(keys)


def _reflect(
    resource: Resource, samples: dict[str, list[Any]], inference: InferenceOptions
) -> dict[str, ColumnResult]:
    from .sql import connect, reflect_columns, reflect_table

    engine = connect(resource.location)
    try:
        table = reflect_table(engine, resource.table or "", resource.options.get("schema"))
        return reflect_columns(engine, table, samples, inference)
    finally:
        engine.dispose()


def _count_rows(resource: Resource) -> int:
    import sqlalchemy as sa

    from .sql import connect, reflect_table

    engine = connect(resource.location)
    try:
        table = reflect_table(engine, resource.table or "", resource.options.get("schema"))
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def _recorded_options(read: dict[str, Any], inference: InferenceOptions) -> dict[str, Any]:
    defaults = {"max_field_size": DEFAULT_MAX_FIELD_SIZE, "max_row_size": DEFAULT_MAX_ROW_SIZE}
    kept = {key: value for key, value in read.items() if defaults.get(key) != value}
    kept["null_values"] = list(inference.null_values)
    return kept


def _sha256(resource: Resource) -> str:
    digest = hashlib.sha256()
    with resource.path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _default_name(resource: Resource) -> str:
    return safe_model_name(resource.table or resource.path.stem)


# --------------------------------------------------------------------------- assembly


def _assemble(
    name: str, source: SourceInfo, results: Mapping[str, ColumnResult], notes: list[str]
) -> Inspection:
    warnings = [warning for result in results.values() for warning in result.warnings]
    kept = {column: result for column, result in results.items() if not result.facts.get("skipped")}
    if not kept:
        raise MalformedSource(
            f"{source.location!r} holds no columns to make fields of.", location=source.location
        )
    field_map = safe_field_names(kept)
    specs: dict[str, FieldSpec] = {}
    provenance: dict[str, FieldProvenance] = {}
    for column, result in kept.items():
        field = field_map[column]
        if field != column:
            result.spec.title = result.spec.title or column
        specs[field] = result.spec
        provenance[field] = FieldProvenance(source_field=column, **result.facts)
    return Inspection(
        name=name,
        source=source,
        json_schema=model_schema(name, specs),
        field_map=field_map,
        primary_key=_primary_key(source, kept, field_map),
        provenance=provenance,
        warnings=warnings + (notes if any(r.spec.kind == "enum" for r in kept.values()) else []),
    )


def _primary_key(
    source: SourceInfo, results: Mapping[str, ColumnResult], field_map: Mapping[str, str]
) -> list[str]:
    """The table's own key, else the best candidate: unique and never null, a key's name and
    type preferred."""
    declared = [field_map[column] for column, result in results.items()
                if result.facts.get("primary_key")]  # fmt: skip
    if declared:
        return declared
    candidates = [
        column
        for column, result in results.items()
        if result.facts.get("unique")
        and not result.spec.nullable
        and result.spec.kind in _KEY_KINDS
        and (source.rows_sampled or source.kind == "sql")
    ]

    def rank(column: str) -> tuple[int, int]:
        lowered = field_map[column]
        named = lowered in _KEY_NAMES or lowered.endswith(tuple(f"_{key}" for key in _KEY_NAMES))
        kind = results[column].spec.kind
        return (0 if named else 1, _KEY_KINDS.index(kind))

    return [field_map[min(candidates, key=rank)]] if candidates else []


# --------------------------------------------------------------------------- documents


def _inspect_document(resource: Resource, name: str | None) -> Inspection:
    document = read_document(resource)
    found_name, properties, warnings = document_fields(resource, document)
    results = {
        key: ColumnResult(spec, {"inferred_type": spec.kind}) for key, spec in properties.items()
    }
    source = SourceInfo(
        **resource.describe(),
        sha256=_sha256(resource),
        rows_sampled=0,
    )
    return _assemble(name or safe_model_name(found_name), source, results, warnings)
