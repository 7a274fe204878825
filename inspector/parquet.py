"""Parquet files (the optional extra: `pip install 'dynamic-model-registry[parquet]'`).

Types come from the file's schema, as an SQL table's come from reflection: integers with their
width's bounds (unsigned ones from 0), floats as numbers, decimals with their precision and
scale, dates, timestamps with or without a zone, times, UUIDs, lists as arrays and structs as
objects. The sampled values add what a schema cannot say: null fraction, distinct values,
range, examples, and for text columns a format every sampled value has (email, URL, UUID, a
date written as text) or an enum (a file does not change after it is written, unlike a
table). A column is nullable when its schema allows nulls and the file holds some: writers
such as pandas mark every column nullable, and the row groups' statistics count the nulls of
the whole file.

Rows are read one batch at a time (`batch_rows`, default 10,000), and only the columns a field
map names, so memory stays flat whatever the file's size. pyarrow is imported only here, and
this module only when a Parquet resource is opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import MalformedSource, ResourceNotFound, UnsupportedResource
from .infer import ColumnResult, InferenceOptions, infer_column
from .names import safe_field_names
from .readers import BadRow, RowReader, SourceRow
from .resources import Resource
from .spec import FieldSpec

__all__ = ["ParquetReader", "parquet_columns"]

#: Rows per batch read from the file: small enough to keep memory flat, large enough that
#: Arrow's per-batch work is spread over many rows.
DEFAULT_BATCH_ROWS = 10_000
#: Text kinds sampled values may refine a string column to, when every value has them.
_TEXT_REFINEMENTS = frozenset(
    {"email", "url", "uuid", "date", "datetime", "datetime_tz", "time", "enum"}
)
_INT64 = (-(2**63), 2**63 - 1)
#: Facts of the sampled values an inspection keeps beside the schema's type.
_SAMPLED_FACTS = ("distinct", "unique", "examples", "min", "max", "format", "max_length")


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UnsupportedResource(
            "Reading Parquet needs pyarrow: pip install 'dynamic-model-registry[parquet]'."
        ) from None
    return pq


def _open_file(resource: Resource) -> Any:
    pq = _pyarrow()
    import pyarrow as pa

    try:
        # pre_buffer (pyarrow's default) reads ahead whole column chunks: memory would grow
        # with the file; without it one row group's pages at a time are held.
        return pq.ParquetFile(resource.location, pre_buffer=False)
    except FileNotFoundError:
        raise ResourceNotFound(
            f"No file at {resource.location!r}.", location=resource.location
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise MalformedSource(
            f"{resource.location!r} is not a readable Parquet file: {exc}.",
            location=resource.location,
        ) from None


# --------------------------------------------------------------------------- rows


class ParquetReader(RowReader):
    """A Parquet file, read in batches of `batch_rows` rows."""

    def __init__(self, resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> None:
        super().__init__(resource, options, on_bad_row)
        self._file = _open_file(resource)
        self.columns = list(self._file.schema_arrow.names)
        self.batch_rows = int(options.get("batch_rows") or DEFAULT_BATCH_ROWS)
        self._selected: list[str] | None = None

    def apply_field_map(self, field_map: Mapping[str, str] | None) -> None:
        super().apply_field_map(field_map)
        if field_map is not None:  # read only the columns the map keeps
            self._selected = [name for name in self.columns or [] if name in field_map]

    def _rows(self) -> Iterator[SourceRow]:
        import pyarrow as pa

        number = 0
        # Maps come out as lists of pairs unless asked for as dicts, which costs half the
        # rate even where no column is a map: asked for only where one is.
        maps = {"maps_as_pydicts": "strict"} if _has_map(self._file.schema_arrow) else {}
        try:
            for batch in self._file.iter_batches(
                batch_size=self.batch_rows, columns=self._selected, use_threads=False
            ):
                for values in _plain(batch).to_pylist(**maps):
                    number += 1
                    yield SourceRow(number, values)
        except pa.ArrowException as exc:
            raise MalformedSource(
                f"{self.resource.location!r} cannot be read after row {number}: {exc}.",
                row=number,
            ) from None

    def close(self) -> None:
        self._file.close()


def _plain(batch: Any) -> Any:
    """The batch with nanosecond times cast to microseconds: Python's datetime holds no more
    (and with pandas installed Arrow would hand out pandas Timestamps instead)."""
    import pyarrow as pa

    casts = {
        index: target
        for index, field in enumerate(batch.schema)
        if (target := _microseconds(field.type)) is not None
    }
    if not casts:
        return batch
    columns = [
        column.cast(casts[index], safe=False) if index in casts else column
        for index, column in enumerate(batch.columns)
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _has_map(schema: Any) -> bool:
    import pyarrow as pa

    def holds_map(arrow_type: Any) -> bool:
        if pa.types.is_map(arrow_type):
            return True
        if pa.types.is_struct(arrow_type):
            return any(holds_map(child.type) for child in arrow_type)
        value_type = getattr(arrow_type, "value_type", None)  # lists, dictionaries
        return value_type is not None and holds_map(value_type)

    return any(holds_map(field.type) for field in schema)


def _microseconds(arrow_type: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns":
        return pa.timestamp("us", tz=arrow_type.tz)
    if pa.types.is_time64(arrow_type) and arrow_type.unit == "ns":
        return pa.time64("us")
    return None


# --------------------------------------------------------------------------- inspection


def parquet_columns(
    resource: Resource, samples: Mapping[str, list[Any]], options: InferenceOptions
) -> tuple[dict[str, ColumnResult], int]:
    """(column name -> its field, the file's row count), from the schema and the samples."""
    parquet = _open_file(resource)
    try:
        schema = parquet.schema_arrow
        metadata = parquet.metadata
        nulls = _null_counts(metadata, {field.name for field in schema})
        rows = int(metadata.num_rows)
        results: dict[str, ColumnResult] = {}
        for field in schema:
            sampled = samples.get(field.name, [])
            results[field.name] = _column(field, sampled, nulls.get(field.name), rows, options)
        return results, rows
    finally:
        parquet.close()


def _null_counts(metadata: Any, top_level: set[str]) -> dict[str, int | None]:
    """Top-level column -> nulls in the whole file, None where a row group has no count.
    Nested columns are left out: their leaves' counts do not tell the parent's nulls."""
    counts: dict[str, int | None] = {}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            name = chunk.path_in_schema
            if name not in top_level:
                continue
            stats = chunk.statistics
            known = stats is not None and stats.has_null_count
            previous = counts.get(name, 0)
            counts[name] = previous + stats.null_count if known and previous is not None else None
    return counts


def _column(
    field: Any, sampled: list[Any], nulls: int | None, rows: int, options: InferenceOptions
) -> ColumnResult:
    spec, warning = _spec_of_type(field.type, field.name)
    warnings = [warning] if warning else []
    if spec is None:
        return ColumnResult(FieldSpec("any"), {"skipped": True}, warnings)
    found = infer_column(field.name, sampled, options)
    if nulls is None and len(sampled) == rows:  # no statistics, but every row was sampled
        nulls = sum(value is None for value in sampled)
    if spec.kind == "string" and found.spec.kind in _TEXT_REFINEMENTS:
        if found.facts.get("confidence") == 1.0:
            spec = found.spec
    if spec.kind == "integer" and found.facts.get("inferred_type") == "decimal":
        spec = FieldSpec("decimal")  # an unsigned 64-bit value beyond the registry's integer
    spec.nullable = bool(field.nullable) and (nulls is None or nulls > 0)
    facts = {key: value for key, value in found.facts.items() if key in _SAMPLED_FACTS}
    if spec.kind not in ("date", "datetime", "datetime_tz", "time"):
        facts.pop("format", None)
    facts.update(
        inferred_type=spec.kind,
        confidence=1.0,
        null_fraction=round(nulls / rows, 6) if nulls is not None and rows else
        found.facts.get("null_fraction"),
        parquet_type=str(field.type),
    )  # fmt: skip
    return ColumnResult(spec, facts, warnings + found.warnings if spec is found.spec else warnings)


def _spec_of_type(arrow_type: Any, name: str) -> tuple[FieldSpec | None, str]:
    """The spec an Arrow type proposes, or None and a warning when no field can hold it."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(arrow_type):
        return _spec_of_type(arrow_type.value_type, name)
    if types.is_boolean(arrow_type):
        return FieldSpec("boolean"), ""
    if types.is_integer(arrow_type):
        return _integer(arrow_type), ""
    if types.is_floating(arrow_type):
        return FieldSpec("number"), ""
    if types.is_decimal(arrow_type):
        return FieldSpec(
            "decimal", max_digits=arrow_type.precision, decimal_places=arrow_type.scale
        ), ""
    if types.is_timestamp(arrow_type):
        return FieldSpec("datetime_tz" if arrow_type.tz else "datetime"), ""
    if types.is_date(arrow_type):
        return FieldSpec("date"), ""
    if types.is_time(arrow_type):
        return FieldSpec("time"), ""
    if getattr(arrow_type, "extension_name", None) == "arrow.uuid":
        return FieldSpec("uuid"), ""
    if types.is_string(arrow_type) or types.is_large_string(arrow_type) or _is_view(arrow_type):
        return FieldSpec("string"), ""
    if (
        types.is_list(arrow_type)
        or types.is_large_list(arrow_type)
        or (types.is_fixed_size_list(arrow_type))
    ):
        item, warning = _spec_of_type(arrow_type.value_type, f"{name}[]")
        if item is not None:
            item.nullable = item.nullable or bool(arrow_type.value_field.nullable)
        return FieldSpec("array", items=item), warning
    if types.is_struct(arrow_type):
        return _struct(arrow_type, name)
    if types.is_map(arrow_type):
        return FieldSpec("object"), ""
    if types.is_null(arrow_type):
        return FieldSpec("any", nullable=True), ""
    return None, (
        f"Column {name!r} has Parquet type {arrow_type}, which no field type stores; "
        "it is left out."
    )


def _is_view(arrow_type: Any) -> bool:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", None)
    return bool(is_view and is_view(arrow_type))


def _integer(arrow_type: Any) -> FieldSpec:
    import pyarrow as pa

    bits = arrow_type.bit_width
    if pa.types.is_unsigned_integer(arrow_type):
        return FieldSpec("integer", minimum=0, maximum=min(2**bits - 1, _INT64[1]))
    return FieldSpec("integer", minimum=-(2 ** (bits - 1)), maximum=2 ** (bits - 1) - 1)


def _struct(arrow_type: Any, name: str) -> tuple[FieldSpec, str]:
    children = [arrow_type.field(index) for index in range(arrow_type.num_fields)]
    keys = [child.name for child in children]
    if not keys or safe_field_names(keys) != {key: key for key in keys}:
        return FieldSpec("object"), (
            f"Column {name!r} holds structs whose keys are not all field names; it is kept "
            "as a free-form object."
            if keys
            else ""
        )
    properties: dict[str, FieldSpec] = {}
    warnings: list[str] = []
    for child in children:
        spec, warning = _spec_of_type(child.type, f"{name}.{child.name}")
        if warning:
            warnings.append(warning)
        if spec is None:
            continue
        spec.nullable = spec.nullable or bool(child.nullable)
        properties[child.name] = spec
    return FieldSpec("object", properties=properties), " ".join(warnings)
