"""Validating and writing records in bulk: import chunks and `create_many` share this.

Validation runs on slices of a batch with one `TypeAdapter(list[Model])` (faster than a loop
of `model_validate` calls, which must build and return every instance from Python); when a
slice holds invalid items, their errors are taken from that run and the slice's valid rest is
validated again. Writing puts every record of the batch, the batch's audit entry (see
`registry.batch_audit`) and whatever the caller adds in the caller's transaction: `COPY` on
PostgreSQL, one `executemany` on SQLite.
"""

from __future__ import annotations

import copy
import datetime
import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from .. import batch_audit
from ..audit import AuditLogger
from ..catalog import ModelEntry
from ..records import RecordTable
from ..records.table import canonical_decimal
from ..tables import as_utc
from ..types import FieldKind
from .fast_email import swap_email

__all__ = ["BulkValidator", "Validated", "write_batch"]

_DECORATOR_KINDS = (
    "validators", "field_validators", "root_validators", "field_serializers",
    "model_serializers", "model_validators", "computed_fields",
)
#: Items validated per call. A slice holding an invalid item is validated again without it,
#: so a rare bad row costs one slice twice, not the whole batch.
_SLICE = 250
_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


@dataclass
class Validated:
    """The outcome of validating one batch."""

    #: Position in the batch of each valid item, and its column values in field order.
    positions: list[int] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    #: Position -> Pydantic's errors for it, without input values.
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


class BulkValidator:
    """Validates batches of items (field -> value) for one model version."""

    def __init__(self, records: RecordTable) -> None:
        self.records = records
        self.fields = records.field_names
        model = bulk_twin(records.model)
        self.adapter: TypeAdapter[list[Any]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        self._converters = [_converter(records, name) for name in self.fields]

    def validate(self, items: Sequence[Mapping[str, Any]]) -> Validated:
        outcome = Validated()
        instances: list[Any] = []
        for start in range(0, len(items), _SLICE):
            positions = list(range(start, min(start + _SLICE, len(items))))
            while positions:
                try:
                    instances += self.adapter.validate_python([items[i] for i in positions])
                except ValidationError as exc:
                    failed = _errors_by_item(exc)
                    for local, errors in failed.items():
                        outcome.errors[positions[local]] = errors
                    positions = [p for i, p in enumerate(positions) if i not in failed]
                    continue
                outcome.positions += positions
                break
        outcome.rows = self._column_rows(instances)
        return outcome

    def _column_rows(self, instances: list[Any]) -> list[list[Any]]:
        # Column by column: each converter runs over one list (most fields have none), and
        # the rows are put together once at the end.
        dumped = self.adapter.dump_python(instances)
        columns = []
        for name, convert in zip(self.fields, self._converters, strict=True):
            values = [item[name] for item in dumped]
            if convert is not None:
                values = [None if value is None else convert(value) for value in values]
            columns.append(values)
        return [list(row) for row in zip(*columns, strict=True)]


def bulk_twin(model: type[BaseModel]) -> type[BaseModel]:
    """The model, or a twin that validates the same data to the same values faster: its
    `EmailStr` fields use `FastEmail`. Only a model with no validators or serializers of its
    own (every model rebuilt from a stored schema) has a twin: code cannot be copied safely."""
    decorators = model.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in _DECORATOR_KINDS):
        return model
    fields: dict[str, Any] = {}
    swapped = False
    for name, info in model.model_fields.items():
        annotation = swap_email(info.annotation)
        swapped = swapped or annotation is not info.annotation
        twin = copy.copy(info)
        twin.annotation = annotation
        fields[name] = (annotation, twin)
    if not swapped:
        return model
    return create_model(model.__name__, __config__=model.model_config, **fields)


def _converter(records: RecordTable, name: str) -> Callable[[Any], Any] | None:
    """The step from a dumped value to its column value, None when there is none (the
    common case, kept off the per-value path)."""
    kind = records.field_types[name].kind
    if kind is FieldKind.DECIMAL:
        return functools.partial(canonical_decimal, places=records.decimal_places.get(name))
    if kind is FieldKind.STRING:
        return str  # email and URL types dump as objects
    if kind is FieldKind.DATETIME:
        return as_utc
    if kind is FieldKind.FLOAT:
        return float
    if kind is FieldKind.CHOICE and _plain_choices(records.field_types[name].choices):
        return _choice_value
    if kind in (FieldKind.JSON, FieldKind.CHOICE):
        return functools.partial(records.to_column_value, name)
    return None


def _plain_choices(choices: tuple[Any, ...]) -> bool:
    return bool(choices) and (
        all(isinstance(c, str) for c in choices)
        or all(isinstance(c, int) and not isinstance(c, bool) for c in choices)
    )


def _choice_value(value: Any) -> Any:
    """A choice of text or whole numbers as its column stores it: its value."""
    return value.value if isinstance(value, enum.Enum) else value


def _errors_by_item(exc: ValidationError) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        index, *loc = error["loc"]
        found.setdefault(int(index), []).append(
            {"loc": loc, "msg": error["msg"], "type": error["type"]}
        )
    return {key: to_jsonable_python(value) for key, value in found.items()}


@dataclass(frozen=True)
class Stamp:
    """Who writes a batch, and when."""

    user_id: str | None
    user_role: str
    at: datetime.datetime


def write_batch(
    conn: Connection,
    *,
    entry: ModelEntry,
    audit: AuditLogger,
    batch: str,
    validated: Validated,
    stamp: Stamp,
    metadata: Mapping[str, Any] | None = None,
) -> list[str]:
    """Insert the valid records of a batch and its audit entry in `conn`'s transaction;
    returns the new records' ids in batch order."""
    if not validated.rows:
        return []
    ids = [batch_audit.batch_record_id(batch, p) for p in validated.positions]
    system = (1, stamp.at, stamp.at, stamp.user_id, stamp.user_id)
    rows = [[record_id, *system, *values] for record_id, values in zip(ids, validated.rows,
                                                                         strict=True)]
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, entry.records, rows)
    else:
        names = [*_SYSTEM, *entry.records.field_names]
        conn.execute(entry.records.insert, [dict(zip(names, row, strict=True)) for row in rows])
    _audit_batch(conn, entry, audit, batch, validated, stamp, metadata or {})
    return ids


def _copy_rows(conn: Connection, records: RecordTable, rows: list[list[Any]]) -> None:
    table = records.table
    columns = [*_SYSTEM, *records.field_names]
    # JSON values go through their column type's bind step, as an INSERT would send them;
    # every other value is already what psycopg writes (see `_converter`).
    steps = [
        (len(_SYSTEM) + i, processor)
        for i, name in enumerate(records.field_names)
        if records.field_types[name].kind in (FieldKind.JSON, FieldKind.CHOICE)
        and (processor := table.c[name].type.bind_processor(conn.dialect)) is not None
    ]
    preparer = conn.dialect.identifier_preparer
    quoted = ", ".join(preparer.quote(name) for name in columns)
    statement = f"COPY {preparer.format_table(table)} ({quoted}) FROM STDIN"
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        write = copy.write_row
        for row in rows:
            for i, process in steps:
                if row[i] is not None:
                    row[i] = process(row[i])
            write(row)


def _audit_batch(
    conn: Connection,
    entry: ModelEntry,
    audit: AuditLogger,
    batch: str,
    validated: Validated,
    stamp: Stamp,
    metadata: Mapping[str, Any],
) -> None:
    payload = batch_audit.BatchPayload(
        entry.records.field_names, validated.positions, to_jsonable_python(validated.rows)
    )
    changes = batch_audit.write_batch(conn, model=entry.name, batch=batch, payload=payload)
    audit.append_row(
        conn,
        at=stamp.at,
        model_name=entry.name,
        record_id=batch_audit.batch_entry_id(batch),
        operation=batch_audit.BATCH_OPERATION,
        user_id=stamp.user_id,
        changes=changes,
        metadata={"role": stamp.user_role, "version": 1, "count": len(validated.rows),
                  **metadata},
    )
