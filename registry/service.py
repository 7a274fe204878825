"""Record create, read, update, delete and list, with permissions, validation and audit.

Each write is one transaction holding the row, its audit outbox entry and, when the caller
gave one, its idempotency key (Invariants 1 and 3). Data is checked before anything is
written: size, unknown fields, field write permissions, then the Pydantic model; an update
validates the merged record, so a failed update changes nothing.
"""

from __future__ import annotations

import builtins
import datetime
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .audit import AuditLogger, Clock
from .catalog import ModelEntry
from .database import Database
from .errors import (
    IdempotencyConflict,
    PayloadTooLarge,
    PermissionDenied,
    RecordNotFound,
    RegistryError,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from .permissions import Permission
from .settings import ModelsSettings
from .tables import as_utc, idempotency_keys
from .types import FieldKind

__all__ = ["RecordService"]

class ModelSource(Protocol):
    """Where the service finds models: the registry's cache."""

    def resolve(self, conn: Connection, name: str) -> ModelEntry:
        """The current entry, after checking the registry version in `conn`'s transaction;
        raises `ModelNotFound`."""

    def peek(self, name: str) -> tuple[ModelEntry | None, int]:
        """The cached entry (None if unknown) and the registry version it belongs to, without
        asking the database."""

#: The columns every record has, as filters take them (a JSON producer sends times as text).
_SYSTEM_FILTERS: dict[str, TypeAdapter[Any]] = {
    "id": TypeAdapter(str),
    "version": TypeAdapter(int),
    "created_by": TypeAdapter(str | None),
    "updated_by": TypeAdapter(str | None),
    "created_at": TypeAdapter(datetime.datetime),
    "updated_at": TypeAdapter(datetime.datetime),
}


class RecordService:
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

    # -- writes -------------------------------------------------------------------------

    def create(
        self,
        model_name: str,
        data: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        check_caller(user_id=user_id, user_role=user_role, idempotency_key=idempotency_key)
        if self.database.is_postgresql:
            try:
                return self._create_in_one_statement(
                    model_name, data, user_id, user_role, idempotency_key, trust_cache=True
                )
            except sa.exc.ProgrammingError:
                # The cached statement names a column another process has since dropped, so
                # it failed before its version check could: go again from the database.
                return self._create_in_one_statement(
                    model_name, data, user_id, user_role, idempotency_key, trust_cache=False
                )
        with self._write(model_name, "create", idempotency_key, user_role) as (conn, entry, done):
            if done is not None:
                return done
            row, record = self._new_row(entry, data, user_id, user_role)
            conn.execute(entry.records.insert, row)
            self._audit(
                conn, entry, record, "create", user_id, user_role, _created(entry, record),
                at=row["created_at"],
            )
            return self._finish(conn, idempotency_key, entry, record, user_role)

    def _new_row(
        self, entry: ModelEntry, data: Mapping[str, Any], user_id: str | None, user_role: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check and validate a new record; returns its row and the record it will read as."""
        entry.permissions.require(user_role, Permission.CREATE)
        self._check_data(entry, data)
        entry.permissions.require_writable(user_role, data.keys())
        instance = self._validate(entry, data)
        now = self.clock()
        row = {
            "id": str(uuid.uuid4()),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": user_id,
            "updated_by": user_id,
            **entry.records.column_values(instance),
        }
        # Column values are already what the database gives back (UTC datetimes, exact
        # decimals, JSON in order), so the record is built here, not read back.
        return row, entry.records.to_record(row)

    def _create_in_one_statement(
        self,
        model_name: str,
        data: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None,
        *,
        trust_cache: bool,
    ) -> dict[str, Any]:
        try:
            with self.database.write() as conn:
                # Start from the cached model without asking the database; the statement
                # itself checks that the cache was current. A refusal made with a model that
                # might be stale is only final once the model is known to be current.
                entry, seen_version = self.models.peek(model_name)
                if not trust_cache:
                    entry = None
                verified = False
                while True:
                    if entry is None:
                        self.models.resolve(conn, model_name)
                        entry, seen_version = self.models.peek(model_name)
                        verified = True
                    assert entry is not None
                    try:
                        row, record = self._new_row(entry, data, user_id, user_role)
                    except RegistryError:
                        if not verified:
                            entry = None
                            continue
                        # A redelivery of a create that committed answers as it did, even
                        # when the model has changed since.
                        done = self._replay(conn, entry, "create", idempotency_key, user_role)
                        if done is None:
                            raise
                        return done
                    params = self._one_statement_params(
                        entry, row, record, user_id, user_role, idempotency_key
                    )
                    params["seen_version"] = seen_version
                    statement = entry.records.pg_create(with_key=idempotency_key is not None)
                    if conn.execute(statement, params).one().inserted:
                        return entry.permissions.view(record, user_role)
                    entry = None  # the registry changed since this process looked
        except sa.exc.IntegrityError as exc:
            if idempotency_key is None or not _is_key_violation(exc):
                raise
        # Another delivery of the same request committed first: answer as it did.
        with self.database.write() as conn:
            entry = self.models.resolve(conn, model_name)
            done = self._claim_key(conn, entry, "create", idempotency_key, user_role)
            assert done is not None
            return done

    def _one_statement_params(
        self,
        entry: ModelEntry,
        row: Mapping[str, Any],
        record: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        params = {f"r_{name}": value for name, value in row.items()}
        audit = self.audit.entry_values(
            at=row["created_at"],
            model_name=entry.name,
            record_id=record["id"],
            operation="create",
            user_id=user_id,
            changes=_created(entry, record),
            metadata={"role": user_role, "version": record["version"]},
        )
        params.update({f"a_{name}": value for name, value in audit.items()})
        if idempotency_key is not None:
            params.update(
                k_key=idempotency_key, k_model=entry.name, k_operation="create",
                k_result=record, k_created_at=row["created_at"],
            )
        return params

    def update(
        self,
        model_name: str,
        record_id: str,
        updates: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        check_caller(
            user_id=user_id, user_role=user_role, record_id=record_id,
            idempotency_key=idempotency_key, expected_version=expected_version,
        )
        with self._write(model_name, "update", idempotency_key, user_role) as (conn, entry, done):
            if done is not None:
                return done
            entry.permissions.require(user_role, Permission.UPDATE)
            self._check_data(entry, updates)
            entry.permissions.require_writable(user_role, updates.keys())
            current = self._locked_row(conn, entry, record_id, expected_version)
            merged = {**entry.records.field_values(current), **updates}
            instance = self._validate(entry, merged)
            values = entry.records.column_values(instance)
            old = entry.records.to_record(current)
            record = entry.records.to_record({**current, **values})
            changes = {
                f: {"old": old[f], "new": record[f]}
                for f in entry.records.field_names
                if old[f] != record[f]
            }
            if not changes:  # nothing changes, so nothing is written or audited
                return self._finish(conn, idempotency_key, entry, old, user_role)
            now = self.clock()
            record = self._write_update(conn, entry, current, values, user_id, now)
            self._audit(conn, entry, record, "update", user_id, user_role, changes, at=now)
            return self._finish(conn, idempotency_key, entry, record, user_role)

    def delete(
        self,
        model_name: str,
        record_id: str,
        user_id: str | None,
        user_role: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        check_caller(
            user_id=user_id, user_role=user_role, record_id=record_id,
            idempotency_key=idempotency_key, expected_version=expected_version,
        )
        with self._write(model_name, "delete", idempotency_key, user_role) as (conn, entry, done):
            if done is not None:
                return done
            entry.permissions.require(user_role, Permission.DELETE)
            current = self._locked_row(conn, entry, record_id, expected_version)
            conn.execute(entry.records.delete_by_id, {"record_id": str(record_id)})
            old = entry.records.to_record(current)
            changes = {f: {"old": old[f], "new": None} for f in entry.records.field_names}
            self._audit(conn, entry, old, "delete", user_id, user_role, changes, at=self.clock())
            result = {"id": record_id, "deleted": True, "version": current["version"]}
            return self._finish(conn, idempotency_key, entry, result, user_role)

    # -- reads --------------------------------------------------------------------------

    def read(
        self, model_name: str, record_id: str, user_id: str | None, user_role: str
    ) -> dict[str, Any]:
        check_caller(user_id=user_id, user_role=user_role, record_id=record_id)
        if self.database.is_postgresql:
            quick = self._read_in_one_statement(model_name, str(record_id), user_role)
            if quick is not None:
                return quick
        with self.database.read() as conn:
            entry = self.models.resolve(conn, model_name)
            entry.permissions.require(user_role, Permission.READ)
            row = conn.execute(entry.records.select_by_id, {"record_id": str(record_id)})
            found = row.mappings().first()
            if found is None:
                raise _not_found(entry, record_id)
            return entry.permissions.view(entry.records.to_record(found), user_role)

    def _read_in_one_statement(
        self, model_name: str, record_id: str, user_role: str
    ) -> dict[str, Any] | None:
        """The record read together with the registry version, in one round trip and no
        transaction; None when the cached model may be stale or the record is missing, for
        the full path to decide (see `pg_statements`)."""
        entry, seen_version = self.models.peek(model_name)
        if entry is None:
            return None
        try:
            with self.database.single_statement() as conn:
                row = conn.execute(entry.records.pg_read, {"record_id": record_id})
                found = row.mappings().first()
        except sa.exc.ProgrammingError:  # the table changed under a stale cache
            return None
        if found is None or found["dmr_registry_version"] != seen_version:
            return None
        entry.permissions.require(user_role, Permission.READ)
        return entry.permissions.view(entry.records.to_record(found), user_role)

    def list(
        self,
        model_name: str,
        user_id: str | None,
        user_role: str,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> dict[str, Any]:
        check_caller(user_id=user_id, user_role=user_role)
        page, page_size = self._paging(page, page_size)
        with self.database.read() as conn:
            entry = self.models.resolve(conn, model_name)
            entry.permissions.require(user_role, Permission.LIST)
            table = entry.records.table
            conditions = self._filter_conditions(entry, user_role, filters or {})
            query = sa.select(table).where(*conditions).order_by(
                *self._ordering(entry, user_role, order_by)
            )
            rows = conn.execute(query.limit(page_size).offset((page - 1) * page_size))
            items = [
                entry.permissions.view(entry.records.to_record(row), user_role)
                for row in rows.mappings()
            ]
            count = sa.select(sa.func.count()).select_from(table).where(*conditions)
            total = int(conn.execute(count).scalar_one())
        return {"items": items, "page": page, "page_size": page_size, "total": total}

    def purge_idempotency_keys(self, older_than: datetime.datetime) -> int:
        """Forget keys created before `older_than`; returns how many were dropped."""
        statement = sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < older_than)
        with self.database.write() as conn:
            return int(conn.execute(statement).rowcount)

    # -- steps --------------------------------------------------------------------------

    @contextmanager
    def _write(
        self, model_name: str, operation: str, idempotency_key: str | None, user_role: str
    ) -> Iterator[tuple[Connection, ModelEntry, dict[str, Any] | None]]:
        """A write transaction with the model resolved and the idempotency key claimed.

        Yields the stored result instead of None when the key was already used: the caller
        returns it without writing again.
        """
        with self.database.write() as conn:
            entry = self.models.resolve(conn, model_name)
            done = None
            if idempotency_key is not None:
                done = self._claim_key(conn, entry, operation, idempotency_key, user_role)
            yield conn, entry, done

    def _replay(
        self,
        conn: Connection,
        entry: ModelEntry,
        operation: str,
        key: str | None,
        user_role: str,
    ) -> dict[str, Any] | None:
        """The stored answer to a request already done under `key`; None if there is none."""
        stored = self._stored_key(conn, key) if key is not None else None
        if stored is None or stored["result"] is None:
            return None
        return self._answer_from_key(entry, operation, stored, user_role)

    def _claim_key(
        self, conn: Connection, entry: ModelEntry, operation: str, key: str, user_role: str
    ) -> dict[str, Any] | None:
        # Inserting the key first makes a concurrent duplicate wait on it, then find it taken.
        stored = self._stored_key(conn, key)
        if stored is None:
            inserted = conn.execute(
                _insert_ignore(self.database, idempotency_keys)
                .values(key=key, model=entry.name, operation=operation, created_at=self.clock())
                .returning(idempotency_keys.c.key)
            )
            if inserted.first() is not None:
                return None
            stored = self._stored_key(conn, key)
            assert stored is not None
        return self._answer_from_key(entry, operation, stored, user_role)

    def _answer_from_key(
        self, entry: ModelEntry, operation: str, stored: Mapping[Any, Any], user_role: str
    ) -> dict[str, Any]:
        key = stored["key"]
        if (stored["model"], stored["operation"]) != (entry.name, operation):
            raise IdempotencyConflict(
                f"Idempotency key {key!r} was used for {stored['operation']} on "
                f"{stored['model']!r}, not for {operation} on {entry.name!r}.",
                key=key,
            )
        result: dict[str, Any] = stored["result"]
        entry.permissions.require(user_role, _PERMISSION_OF[operation])
        if "deleted" in result:
            return result
        return entry.permissions.view(result, user_role, entry.known_fields)

    def _stored_key(self, conn: Connection, key: str) -> Mapping[Any, Any] | None:
        query = sa.select(idempotency_keys).where(idempotency_keys.c.key == key)
        return conn.execute(query).mappings().first()

    def _finish(
        self,
        conn: Connection,
        idempotency_key: str | None,
        entry: ModelEntry,
        record: dict[str, Any],
        user_role: str,
    ) -> dict[str, Any]:
        if idempotency_key is not None:
            conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.key == idempotency_key)
                .values(result=record)
            )
        if "deleted" in record:
            return record
        return entry.permissions.view(record, user_role)

    def _check_data(self, entry: ModelEntry, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise ValidationFailed(
                f"Data for {entry.name!r} must be an object of field values, "
                f"not {type(data).__name__}.",
                model=entry.name,
                errors=[],
            )
        try:
            encoded = to_json(data, fallback=str)
        except PydanticSerializationError:
            raise ValidationFailed(
                f"Data for {entry.name!r} holds text that is not valid Unicode (a lone "
                "surrogate), which cannot be stored.",
                model=entry.name,
                errors=[{"loc": [], "msg": "invalid Unicode", "type": "unicode"}],
            ) from None
        size = len(encoded)
        if b"\\u0000" in encoded:  # cheap test first; the walk names the field
            where = _nul_path(dict(data))
            if where is not None:
                field = ".".join(where)
                raise ValidationFailed(
                    f"Data for {entry.name!r} holds a NUL character in {field!r}, which no "
                    "text column can store.",
                    model=entry.name,
                    errors=[{"loc": list(where), "msg": "NUL character", "type": "nul"}],
                )
        if size > self.settings.max_payload_bytes:
            raise PayloadTooLarge(
                f"Data for {entry.name!r} is {size} bytes; the limit is "
                f"{self.settings.max_payload_bytes} bytes.",
                model=entry.name,
                size=size,
                limit=self.settings.max_payload_bytes,
                errors=[],
            )
        unknown = sorted(str(name) for name in data if name not in entry.records.field_types)
        if unknown:
            raise UnknownField(
                f"Model {entry.name!r} has no field {', '.join(map(repr, unknown))}.",
                model=entry.name,
                fields=unknown,
                errors=[{"loc": [name], "msg": "Unknown field", "type": "unknown_field"}
                        for name in unknown],
            )

    def _validate(self, entry: ModelEntry, data: Mapping[str, Any]) -> BaseModel:
        try:
            return entry.model.model_validate(dict(data))
        except ValidationError as exc:
            raise validation_failed(entry.name, exc) from None

    def _locked_row(
        self, conn: Connection, entry: ModelEntry, record_id: str, expected_version: int | None
    ) -> Mapping[Any, Any]:
        query = self.database.for_update(entry.records.select_by_id)
        row = conn.execute(query, {"record_id": str(record_id)}).mappings().first()
        if row is None:
            raise _not_found(entry, record_id)
        if expected_version is not None and row["version"] != expected_version:
            raise VersionConflict(
                f"Record {record_id!r} of {entry.name!r} is at version {row['version']}, "
                f"not the expected {expected_version}.",
                model=entry.name,
                record_id=record_id,
                expected_version=expected_version,
                actual_version=row["version"],
            )
        return row

    def _write_update(
        self,
        conn: Connection,
        entry: ModelEntry,
        current: Mapping[Any, Any],
        values: dict[str, Any],
        user_id: str | None,
        now: datetime.datetime,
    ) -> dict[str, Any]:
        table = entry.records.table
        statement = (
            sa.update(table)
            .where(table.c.id == current["id"], table.c.version == current["version"])
            .values(version=current["version"] + 1, updated_at=now, updated_by=user_id,
                    **values)
            .returning(*table.c)
        )
        return entry.records.to_record(conn.execute(statement).mappings().one())

    def _audit(
        self,
        conn: Connection,
        entry: ModelEntry,
        record: Mapping[str, Any],
        operation: str,
        user_id: str | None,
        user_role: str,
        changes: dict[str, dict[str, Any]],
        *,
        at: datetime.datetime,
    ) -> None:
        """Write the change's audit entry, timed as the row says the change was made."""
        self.audit.append_row(
            conn,
            at=at,
            model_name=entry.name,
            record_id=record["id"],
            operation=operation,
            user_id=user_id,
            changes=changes,
            metadata={"role": user_role, "version": record["version"]},
        )

    def _paging(self, page: int, page_size: int | None) -> tuple[int, int]:
        size = self.settings.default_page_size if page_size is None else page_size
        limit = self.settings.max_page_size
        if not isinstance(page, int) or isinstance(page, bool) or page < 1:
            raise ValidationFailed(
                f"Page must be a whole number from 1, not {page!r}.",
                errors=[{"loc": ["page"], "msg": "must be >= 1", "type": "page"}],
            )
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= limit:
            raise ValidationFailed(
                f"Page size must be a whole number from 1 to {limit}, not {size!r}.",
                errors=[{"loc": ["page_size"], "msg": f"must be 1..{limit}", "type": "page_size"}],
            )
        if (page - 1) * size > MAX_OFFSET:
            raise ValidationFailed(
                f"Page {page} of {size} records starts past the last row any table can hold.",
                errors=[{"loc": ["page"], "msg": "too large", "type": "page"}],
            )
        return page, size

    def _filter_conditions(
        self, entry: ModelEntry, user_role: str, filters: Mapping[str, Any]
    ) -> builtins.list[sa.ColumnElement[bool]]:
        if not isinstance(filters, Mapping):
            raise ValidationFailed("Filters must be an object of field: value.", errors=[])
        table = entry.records.table
        conditions = []
        for name, value in filters.items():
            self._require_queryable(entry, user_role, name, "filter on")
            conditions.append(table.c[name] == self._filter_value(entry, name, value))
        return conditions

    def _filter_value(self, entry: ModelEntry, name: str, value: Any) -> Any:
        if name in _SYSTEM_FILTERS:
            try:
                system_value = _SYSTEM_FILTERS[name].validate_python(value)
            except ValidationError as exc:
                raise validation_failed(entry.name, exc, prefix=[name]) from None
            if isinstance(system_value, datetime.datetime):
                return as_utc(system_value)
            return system_value
        ftype = entry.records.field_types[name]
        if ftype.kind is FieldKind.JSON:
            raise ValidationFailed(
                f"Field {name!r} of {entry.name!r} holds JSON and cannot be filtered by equality.",
                model=entry.name,
                field=name,
                errors=[{"loc": [name], "msg": "not filterable", "type": "filter"}],
            )
        # Every field of a registered model has an annotation; None only types the attribute.
        annotation: Any = entry.model.model_fields[name].annotation
        try:
            typed: Any = TypeAdapter(annotation).validate_python(value)
        except ValidationError as exc:
            raise validation_failed(entry.name, exc, prefix=[name]) from None
        return entry.records.to_column_value(name, typed)

    def _ordering(
        self, entry: ModelEntry, user_role: str, order_by: str | None
    ) -> builtins.list[sa.UnaryExpression[Any] | sa.Column[Any]]:
        table = entry.records.table
        if not order_by:
            return [table.c.created_at, table.c.id]
        if not isinstance(order_by, str):
            raise ValidationFailed(f"order_by must be a field name, not {order_by!r}.", errors=[])
        name = order_by.removeprefix("-")
        self._require_queryable(entry, user_role, name, "order by")
        column: Any = table.c[name]
        kind = entry.records.field_types.get(name)
        if kind is not None and kind.kind is FieldKind.DECIMAL and not self.database.is_postgresql:
            # SQLite keeps decimals as exact text; text order is not number order.
            column = sa.cast(column, sa.Float)
        return [column.desc() if order_by.startswith("-") else column.asc(), table.c.id]

    def _require_queryable(
        self, entry: ModelEntry, user_role: str, name: str, action: str
    ) -> None:
        if name in _SYSTEM_FILTERS:
            return
        if name not in entry.records.field_types:
            raise UnknownField(
                f"Model {entry.name!r} has no field {name!r} to {action}.",
                model=entry.name,
                fields=[name],
                errors=[{"loc": [name], "msg": "Unknown field", "type": "unknown_field"}],
            )
        # Filtering or sorting on a value the role may not see would reveal it row by row.
        if not entry.permissions.plainly_readable(user_role, name):
            raise PermissionDenied(
                f"Role {user_role!r} cannot {action} field {name!r} of {entry.name!r}.",
                model=entry.name,
                role=user_role,
                field=name,
            )


_PERMISSION_OF = {
    "create": Permission.CREATE,
    "update": Permission.UPDATE,
    "delete": Permission.DELETE,
}
#: Longest values the system columns hold (user ids, idempotency keys, record ids).
MAX_USER_ID = 200
MAX_IDEMPOTENCY_KEY = 200
MAX_RECORD_ID = 64
#: Largest row offset a page may start at (a signed 64-bit OFFSET on every backend).
MAX_OFFSET = 2**62
_UNSET: Any = object()


def check_caller(
    *,
    user_id: Any,
    user_role: Any,
    record_id: Any = _UNSET,
    idempotency_key: Any = None,
    expected_version: Any = None,
) -> None:
    """Refuse malformed call arguments (a raw producer can send any JSON) with
    `ValidationFailed`, before anything is read or written."""
    problems = [
        *_text_problem("user_role", user_role, 200, required=True),
        *_text_problem("user_id", user_id, MAX_USER_ID, required=False),
        *_text_problem("idempotency_key", idempotency_key, MAX_IDEMPOTENCY_KEY, required=False),
    ]
    if record_id is not _UNSET:
        problems += _text_problem("record_id", record_id, MAX_RECORD_ID, required=True)
    if expected_version is not None and (
        not isinstance(expected_version, int) or isinstance(expected_version, bool)
    ):
        problems.append(("expected_version", "must be a whole number or null"))
    if problems:
        raise _invalid_call(problems)


def check_text(name: str, value: Any, limit: int, *, required: bool) -> None:
    """Refuse a text argument that is not a string, too long, or not storable."""
    problems = _text_problem(name, value, limit, required=required)
    if problems:
        raise _invalid_call(problems)


def check_time(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, datetime.datetime):
        raise _invalid_call([(name, "must be a datetime")])


def _invalid_call(problems: list[tuple[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "Invalid call: " + "; ".join(f"{name} {why}" for name, why in problems) + ".",
        errors=[{"loc": [name], "msg": why, "type": "argument"} for name, why in problems],
    )


def _text_problem(name: str, value: Any, limit: int, *, required: bool) -> list[tuple[str, str]]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or (required and not value):
        return [(name, "must be a string" if not required else "must be a non-empty string")]
    if len(value) > limit:
        return [(name, f"is {len(value)} characters long; the limit is {limit}")]
    if "\x00" in value:
        return [(name, "holds a NUL character")]
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return [(name, "is not valid Unicode")]
    return []


def _nul_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where a NUL character hides in JSON data (no database text column can hold one)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        items: Any = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _nul_path(item, (*path, key))
        if found is not None:
            return found
    return None


def _created(entry: ModelEntry, record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"old": None, "new": record[name]} for name in entry.records.field_names}


def _is_key_violation(exc: sa.exc.IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "table_name", None) == idempotency_keys.name


def _insert_ignore(database: Database, table: sa.Table) -> Any:
    """INSERT that does nothing when the primary key exists (RETURNING tells which happened)."""
    if database.is_postgresql:
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _not_found(entry: ModelEntry, record_id: Any) -> RecordNotFound:
    return RecordNotFound(
        f"Model {entry.name!r} has no record {record_id!r}.", model=entry.name, record_id=record_id
    )


def validation_failed(
    model_name: str, exc: ValidationError, prefix: list[str] | None = None
) -> ValidationFailed:
    """Pydantic's errors without the input values, which may be secrets (Invariant 4)."""
    errors = [
        {
            "loc": [*(prefix or []), *error["loc"]],
            "msg": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}" for e in errors
    )
    return ValidationFailed(
        f"Record for {model_name!r} is invalid: {summary}.",
        model=model_name,
        errors=to_jsonable_python(errors),
    )
