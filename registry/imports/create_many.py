"""`create_many`: many records of one model in one transaction, all or nothing.

Every item is checked (unknown fields, field write permissions, the model) before anything is
written; if any fails, nothing is, and the error lists each failing item's index and errors.
The records and their one batch audit entry are written with the bulk writer that imports
use. With an idempotency key, the batch's record ids derive from the key, and a repeated call
answers with the records the first one made.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from .. import batch_audit
from ..audit import AuditLogger, Clock
from ..database import Database
from ..errors import IdempotencyConflict, UnknownField, ValidationFailed
from ..operations import MAX_IDEMPOTENCY_KEY, check_caller, check_text
from ..permissions import Permission
from ..settings import ModelsSettings
from ..tables import idempotency_keys
from .bulk import BulkValidator, Stamp, write_batch
from .jobs import ModelSource
from .keyed import duplicate_of

__all__ = ["MAX_ITEMS", "BulkCreator"]

#: Most items one call may create.
MAX_ITEMS = 10_000
_OPERATION = "create_many"


class BulkCreator:
    def __init__(
        self,
        database: Database,
        audit: AuditLogger,
        settings: ModelsSettings,
        models: ModelSource,
        clock: Clock,
    ) -> None:
        self.database = database
        self.audit = audit
        self.settings = settings
        self.models = models
        self.clock = clock

    def create_many(
        self,
        model: str,
        items: Sequence[Mapping[str, Any]],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create every item or none; returns the records as `user_role` may see them.

        Raises `ValidationFailed` whose errors carry each failing item's `index` (and `loc`
        starting with it), `UnknownField`, `PermissionDenied`, `IdempotencyConflict`, or
        `DuplicateValue` (an item repeats a unique value: nothing is created)."""
        check_caller(user_id, user_role)
        check_text("idempotency_key", idempotency_key, required=False, limit=MAX_IDEMPOTENCY_KEY)
        _check_items(items)
        try:
            return self._create(model, items, user_id, user_role, idempotency_key)
        except sa.exc.IntegrityError:
            if idempotency_key is None:
                raise
        # Another delivery with the same key committed first: answer as it did.
        with self.database.read() as conn:
            entry = self.models.resolve(conn, model)
            done = _replay(conn, entry.name, idempotency_key)
            assert done is not None
            return [entry.permissions.view(record, user_role) for record in done]

    def _create(
        self,
        model: str,
        items: Sequence[Mapping[str, Any]],
        user_id: str | None,
        user_role: str,
        key: str | None,
    ) -> list[dict[str, Any]]:
        with self.database.write() as conn:
            entry = self.models.resolve(conn, model)
            if key is not None:
                done = _replay(conn, entry.name, key)
                if done is not None:
                    return [entry.permissions.view(record, user_role) for record in done]
            entry.permissions.require(user_role, Permission.CREATE)
            _check_fields(entry.name, entry.records.field_types, items)
            entry.permissions.require_writable(user_role, {f for item in items for f in item})
            validated = BulkValidator(entry.records).validate(items)
            if validated.errors:
                raise _invalid(entry.name, validated.errors)
            stamp = Stamp(user_id, user_role, self.clock())
            batch = batch_audit.new_batch_key(_OPERATION, key or uuid.uuid4().hex)
            try:
                ids = write_batch(conn, entry=entry, audit=self.audit, batch=batch,
                                  validated=validated, stamp=stamp)
            except (sa.exc.IntegrityError, psycopg.errors.IntegrityError) as exc:
                # All or nothing: the transaction rolls back; name the field, not the index.
                duplicate = duplicate_of(exc, entry)
                if duplicate is None:
                    raise
                raise duplicate from None
            records = _records(entry.records.field_names, ids, validated.rows, stamp)
            if key is not None:
                conn.execute(sa.insert(idempotency_keys), {
                    "key": key, "model": entry.name, "operation": _OPERATION,
                    "result": records, "created_at": stamp.at,
                })
            return [entry.permissions.view(record, user_role) for record in records]


def _check_items(items: Any) -> None:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationFailed(
            f"Items must be a list of 1 to {MAX_ITEMS} objects of field values.",
            errors=[{"loc": ["items"], "msg": "not a list of 1..{MAX_ITEMS}", "type": "items"}],
        )
    bad = [i for i, item in enumerate(items) if not isinstance(item, Mapping)]
    if bad:
        raise ValidationFailed(
            f"Items {bad[:10]} are not objects of field values.",
            errors=[{"index": i, "loc": [i], "msg": "not an object", "type": "items"}
                    for i in bad],
        )


def _check_fields(model: str, known: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> None:
    errors = [
        {"index": i, "loc": [i, str(name)], "msg": "Unknown field", "type": "unknown_field"}
        for i, item in enumerate(items) for name in item if name not in known
    ]
    if errors:
        names = sorted({str(name) for item in items for name in item if name not in known})
        raise UnknownField(
            f"Model {model!r} has no field {', '.join(map(repr, names))}.",
            model=model, fields=names, errors=errors,
        )


def _invalid(model: str, errors: Mapping[int, list[dict[str, Any]]]) -> ValidationFailed:
    flat = [{"index": i, **error, "loc": [i, *error["loc"]]}
            for i, found in sorted(errors.items()) for error in found]
    shown = ", ".join(str(i) for i in sorted(errors)[:20])
    return ValidationFailed(
        f"{len(errors)} of the items for {model!r} are invalid (items {shown}); nothing was "
        "created.",
        model=model, errors=flat,
    )


def _records(
    fields: list[str], ids: list[str], rows: list[list[Any]], stamp: Stamp
) -> list[dict[str, Any]]:
    records = [
        {"id": record_id, "version": 1, **dict(zip(fields, values, strict=True)),
         "created_at": stamp.at, "updated_at": stamp.at, "created_by": stamp.user_id,
         "updated_by": stamp.user_id}
        for record_id, values in zip(ids, rows, strict=True)
    ]
    jsonable: list[dict[str, Any]] = to_jsonable_python(records)
    return jsonable


def _replay(conn: Connection, model: str, key: str | None) -> list[dict[str, Any]] | None:
    row = conn.execute(
        sa.select(idempotency_keys).where(idempotency_keys.c.key == key)
    ).mappings().first()
    if row is None:
        return None
    if row["model"] != model or row["operation"] != _OPERATION:
        raise IdempotencyConflict(
            f"Idempotency key {key!r} was used for {row['operation']} on {row['model']!r}, "
            f"not {_OPERATION} on {model!r}.",
            key=key, model=model,
        )
    result: list[dict[str, Any]] = row["result"]
    return result
