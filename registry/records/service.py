"""`RecordService`: handles the record operations (registry/operations.py).

Each write is one transaction holding the row, its audit outbox entry and, when the caller
gave one, its idempotency key (Invariants 1 and 3). The operation has checked its own
arguments when it was made; here the data is checked against the model before anything is
written: size, unknown fields, field write permissions, then the Pydantic model. An update
validates the merged record, so a failed update changes nothing.
"""

from __future__ import annotations

import builtins
import datetime
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json, to_jsonable_python
from sqlalchemy.engine import Connection

from ..audit import AuditEntry, AuditLogger, Clock, record_as_of
from ..catalog import ModelEntry
from ..cqrs.mode_rules import refuse_unless_crud
from ..database import Database, driver_of
from ..errors import (
    PayloadTooLarge,
    RecordNotFound,
    RegistryError,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from ..ids import new_id
from ..model_cache import ModelCache
from ..operations import (
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    Operation,
    RecordAsOf,
    RecordHistory,
    UpdateRecord,
    check_field_values,
)
from ..permissions import Permission
from ..query import CursorCodec, ListLimits, ListRequest, list_page, record_fields, visibility_of
from ..query.cursors import cursor_key
from ..query.indexes import duplicate_value
from ..query.listing import Page
from ..settings import ModelsSettings
from ..tables import registry_state
from .idempotency import IdempotencyKeys

__all__ = ["RecordService", "validation_failed"]

#: The registry version, read beside a page so that a page listed with a cached model is
#: trusted only when that model is current (Invariant 2).
_REGISTRY_VERSION = (
    sa.select(registry_state.c.version).where(registry_state.c.id == 1).scalar_subquery()
)
_Result = TypeVar("_Result")


def _naming_duplicates(write: Callable[..., _Result]) -> Callable[..., _Result]:
    """A unique index's violation becomes `DuplicateValue` naming the field, not a database
    error (the write's transaction has rolled back: nothing of it is kept)."""

    @functools.wraps(write)
    def checked(service: RecordService, op: Any, *args: Any, **kwargs: Any) -> _Result:
        try:
            return write(service, op, *args, **kwargs)
        except sa.exc.IntegrityError as exc:
            entry, _ = service.models.peek(op.model)
            duplicate = None if entry is None else duplicate_value(
                exc, entry.name, entry.records.table.name, entry.indexes
            )
            if duplicate is None:
                raise
            raise duplicate from None

    return checked


def _listed(entry: ModelEntry, user_role: str, found: Page) -> dict[str, Any]:
    """The page as the role may see it: `ModelPermissions.view` of each record, with how the
    role sees each field decided once per page rather than once per row and field."""
    records = entry.records.to_records(found.rows)
    hidden, masked = [], []
    for field in entry.records.record_columns:
        how = entry.permissions.field_visibility(field, user_role)
        if how is False:
            hidden.append(field)
        elif how is not True:
            masked.append((field, how))
    if hidden or masked:
        for record in records:
            for field in hidden:
                del record[field]
            for field, mask in masked:
                if record[field] is not None:
                    record[field] = mask(record[field])
    return {"items": records, **found.answer}


class RecordService:
    """Create, read, update, delete and list records; their history and past states."""

    def __init__(
        self,
        database: Database,
        audit: AuditLogger,
        settings: ModelsSettings,
        models: ModelCache,
        clock: Clock,
    ) -> None:
        self.database = database
        self.audit = audit
        self.settings = settings
        self.models = models
        self.clock = clock
        self.keys = IdempotencyKeys(database, clock)
        self.list_limits = ListLimits.from_settings(settings)
        self.cursors = CursorCodec(cursor_key(settings.cursor_secret, database.url))
        self._handlers: dict[type[Operation], Callable[[Any], Any]] = {
            CreateRecord: self.create,
            UpdateRecord: self.update,
            DeleteRecord: self.delete,
            GetRecord: self.read,
            ListRecords: self.list,
            RecordHistory: self.history,
            RecordAsOf: self.as_of,
        }

    def handle(self, operation: Operation) -> Any:
        """Carry out any record operation; see the handler of its type."""
        handler = self._handlers.get(type(operation))
        if handler is None:
            raise TypeError(f"The record service does not handle {type(operation).__name__}.")
        return handler(operation)

    # -- writes -------------------------------------------------------------------------

    @_naming_duplicates
    def create(self, op: CreateRecord) -> dict[str, Any]:
        if self.database.is_postgresql:
            try:
                return self._create_in_one_statement(op, trust_cache=True)
            except sa.exc.ProgrammingError:
                # The cached statement names a column another process has since dropped, so
                # it failed before its version check could: go again from the database.
                return self._create_in_one_statement(op, trust_cache=False)
        with self._write(op.model, "create", op.idempotency_key, op.user_role) as (
            conn, entry, done,
        ):
            if done is not None:
                return done
            row, record = self._new_row(entry, op)
            entry.records.insert_row(conn, row)
            self._audit(conn, entry, record, "create", op, _created(entry, record),
                        at=row["created_at"])
            return self._finish(conn, op.idempotency_key, entry, record, op.user_role)

    def _new_row(
        self, entry: ModelEntry, op: CreateRecord
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check and validate a new record; returns its row and the record it will read as."""
        refuse_unless_crud(entry, "create")
        entry.permissions.require(op.user_role, Permission.CREATE)
        self._check_data(entry, op.data)
        entry.permissions.require_writable(op.user_role, op.data.keys())
        instance = self._validate(entry, op.data)
        now = self.clock()
        row = {
            "id": new_id(),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": op.user_id,
            "updated_by": op.user_id,
            **entry.records.column_values(instance),
        }
        # Column values are already what the database gives back (UTC datetimes, exact
        # decimals, JSON in order), so the record is built here, not read back.
        return row, entry.records.to_record(row)

    def _create_in_one_statement(self, op: CreateRecord, *, trust_cache: bool) -> dict[str, Any]:
        try:
            with self.database.write() as conn:
                # Start from the cached model without asking the database; the statement
                # itself checks that the cache was current. A refusal made with a model that
                # might be stale is only final once the model is known to be current.
                entry, seen_version = self.models.peek(op.model)
                if not trust_cache:
                    entry = None
                verified = False
                while True:
                    if entry is None:
                        self.models.resolve(conn, op.model)
                        entry, seen_version = self.models.peek(op.model)
                        verified = True
                    assert entry is not None
                    try:
                        row, record = self._new_row(entry, op)
                    except RegistryError:
                        if not verified:
                            entry = None
                            continue
                        # A redelivery of a create that committed answers as it did, even
                        # when the model has changed since.
                        done = self.keys.replay(
                            conn, entry, "create", op.idempotency_key, op.user_role
                        )
                        if done is None:
                            raise
                        return done
                    params = self._one_statement_params(entry, row, record, op)
                    params["seen_version"] = seen_version
                    statement = entry.records.pg_create(with_key=op.idempotency_key is not None)
                    if conn.execute(statement, params).one().inserted:
                        return entry.permissions.view(record, op.user_role)
                    entry = None  # the registry changed since this process looked
        except sa.exc.IntegrityError as exc:
            if op.idempotency_key is None or not IdempotencyKeys.is_key_violation(exc):
                raise
        # Another delivery of the same request committed first: answer as it did.
        with self.database.write() as conn:
            entry = self.models.resolve(conn, op.model)
            done = self.keys.claim(conn, entry, "create", op.idempotency_key, op.user_role)
            assert done is not None
            return done

    def _one_statement_params(
        self,
        entry: ModelEntry,
        row: Mapping[str, Any],
        record: Mapping[str, Any],
        op: CreateRecord,
    ) -> dict[str, Any]:
        params = {f"r_{name}": value for name, value in row.items()}
        audit = self.audit.entry_values(
            at=row["created_at"],
            model_name=entry.name,
            record_id=record["id"],
            operation="create",
            user_id=op.user_id,
            changes=_created(entry, record),
            metadata={"role": op.user_role, "version": record["version"]},
        )
        params.update({f"a_{name}": value for name, value in audit.items()})
        if op.idempotency_key is not None:
            params.update(
                k_key=op.idempotency_key, k_model=entry.name, k_operation="create",
                k_result=record, k_created_at=row["created_at"],
            )
        return params

    @_naming_duplicates
    def update(self, op: UpdateRecord) -> dict[str, Any]:
        with self._write(op.model, "update", op.idempotency_key, op.user_role) as (
            conn, entry, done,
        ):
            if done is not None:
                return done
            entry.permissions.require(op.user_role, Permission.UPDATE)
            self._check_data(entry, op.updates)
            entry.permissions.require_writable(op.user_role, op.updates.keys())
            current = self._locked_row(conn, entry, op.record_id, op.expected_version)
            merged = {**entry.records.field_values(current), **op.updates}
            instance = self._validate(entry, merged)
            values = entry.records.column_values(instance)
            old = entry.records.to_record(current)
            record = entry.records.to_record({**current, **values})
            changes = {
                f: {"old": old[f], "new": record[f]}
                for f in entry.records.field_names
                if old[f] != record[f] or f in op.updates
            }
            unchanged = all(old[f] == record[f] for f in changes)
            if unchanged and self._sees_all(entry, op.user_role, op.updates):
                # Nothing changes, and the role can see so: nothing is written or audited.
                return self._finish(conn, op.idempotency_key, entry, old, op.user_role)
            # A role that wrote a field it may not read must not learn from the answer whether
            # its value equalled the stored one: such an update is always written and audited
            # (a new version), the fields it wrote among the changes even when equal.
            now = self.clock()
            record = self._write_update(conn, entry, current, values, op.user_id, now)
            self._audit(conn, entry, record, "update", op, changes, at=now)
            return self._finish(conn, op.idempotency_key, entry, record, op.user_role)

    def delete(self, op: DeleteRecord) -> dict[str, Any]:
        with self._write(op.model, "delete", op.idempotency_key, op.user_role) as (
            conn, entry, done,
        ):
            if done is not None:
                return done
            entry.permissions.require(op.user_role, Permission.DELETE)
            current = self._locked_row(conn, entry, op.record_id, op.expected_version)
            conn.execute(entry.records.delete_by_id, {"record_id": op.record_id})
            old = entry.records.to_record(current)
            changes = {f: {"old": old[f], "new": None} for f in entry.records.field_names}
            self._audit(conn, entry, old, "delete", op, changes, at=self.clock())
            result = {"id": op.record_id, "deleted": True, "version": current["version"]}
            return self._finish(conn, op.idempotency_key, entry, result, op.user_role)

    @staticmethod
    def _sees_all(entry: ModelEntry, user_role: str, fields: Iterable[str]) -> bool:
        return all(entry.permissions.plainly_readable(user_role, name) for name in fields)

    def purge_idempotency_keys(self, older_than: datetime.datetime) -> int:
        """Forget keys created before `older_than`; returns how many were dropped."""
        return self.keys.purge(older_than)

    # -- reads --------------------------------------------------------------------------

    def read(self, op: GetRecord) -> dict[str, Any]:
        if self.database.is_postgresql:
            quick = self._read_in_one_statement(op)
            if quick is not None:
                return quick
        with self.database.read() as conn:
            entry = self.models.resolve(conn, op.model)
            entry.permissions.require(op.user_role, Permission.READ)
            row = conn.execute(entry.records.select_by_id, {"record_id": op.record_id})
            found = row.mappings().first()
            if found is None:
                raise _not_found(entry, op.record_id)
            return entry.permissions.view(entry.records.to_record(found), op.user_role)

    def _read_in_one_statement(self, op: GetRecord) -> dict[str, Any] | None:
        """The record read together with the registry version, in one round trip and no
        transaction; None when the cached model may be stale or the record is missing, for
        the full path to decide (see `pg_statements`)."""
        entry, seen_version = self.models.peek(op.model)
        if entry is None:
            return None
        try:
            with self.database.single_statement() as conn, driver_of(conn) as driver:
                read = entry.records.pg_read_on(conn.dialect)
                rows = read.rows(driver, {"record_id": op.record_id})
        except sa.exc.ProgrammingError:  # the table changed under a stale cache
            return None
        found = rows[0]._mapping if rows else None
        if found is None or found["dmr_registry_version"] != seen_version:
            return None
        entry.permissions.require(op.user_role, Permission.READ)
        return entry.permissions.view(entry.records.to_record(found), op.user_role)

    def list(self, op: ListRecords) -> dict[str, Any]:
        """One page; filters, cursors and counts are registry/query's (see listing.py)."""
        request = ListRequest(op.filters, op.order_by, op.page, op.page_size, op.after, op.count)
        if self.database.is_postgresql:
            quick = self._list_in_one_statement(op, request)
            if quick is not None:
                return quick
        with self.database.read() as conn:
            entry = self.models.resolve(conn, op.model)
            entry.permissions.require(op.user_role, Permission.LIST)
            found = self._page(conn, entry, op.user_role, request)
        return _listed(entry, op.user_role, found)

    def _list_in_one_statement(
        self, op: ListRecords, request: ListRequest
    ) -> dict[str, Any] | None:
        """The page read with the registry version beside it, in one statement and no
        transaction; None when the cached model may be stale (or refused the request: a
        refusal counts only once the model is known to be current), for the full path."""
        entry, seen_version = self.models.peek(op.model)
        if entry is None or not entry.permissions.can_perform(op.user_role, Permission.LIST):
            return None
        try:
            with self.database.single_statement() as conn:
                found = self._page(conn, entry, op.user_role, request, guard=_REGISTRY_VERSION)
        except (sa.exc.ProgrammingError, RegistryError):
            return None
        if found.guard != seen_version:
            return None
        return _listed(entry, op.user_role, found)

    def _page(
        self,
        conn: Connection,
        entry: ModelEntry,
        user_role: str,
        request: ListRequest,
        guard: sa.ScalarSelect[Any] | None = None,
    ) -> Page:
        return list_page(
            conn, entry.records.table, request, model=entry.name, role=user_role,
            fields=record_fields(entry.records, conn.dialect.name),
            visibility=visibility_of(entry.permissions, user_role),
            limits=self.list_limits, codec=self.cursors, guard=guard,
            indexes=entry.index_columns,
        )

    def history(self, op: RecordHistory) -> builtins.list[AuditEntry]:
        """Audit entries, oldest first, old and new values masked for the role; raises
        `PermissionDenied` for a role that may not read."""
        entry = self._readable_entry(op.model, op.user_role)
        found = self.audit.history(
            entry.name, op.record_id, since=op.since, until=op.until, actor=op.actor
        )
        return [
            audit.model_copy(
                update={
                    "changes": entry.permissions.view_changes(
                        audit.changes, op.user_role, entry.known_fields
                    )
                }
            )
            for audit in found
        ]

    def as_of(self, op: RecordAsOf) -> dict[str, Any]:
        """The record as it was at `op.at`, a deleted record included, as the role may see
        it. Raises `RecordNotFound` when the record did not exist then."""
        entry = self._readable_entry(op.model, op.user_role)
        record = record_as_of(self.audit.history(entry.name, op.record_id), op.at)
        if record is None:
            raise RecordNotFound(
                f"Record {op.record_id!r} of {entry.name!r} did not exist at "
                f"{op.at.isoformat()}.",
                model=entry.name,
                record_id=op.record_id,
            )
        return entry.permissions.view(record, op.user_role, entry.known_fields)

    def _readable_entry(self, model: str, user_role: str) -> ModelEntry:
        with self.database.read() as conn:
            entry = self.models.resolve(conn, model)
        entry.permissions.require(user_role, Permission.READ)
        return entry

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
            if operation != "create":  # a create checks in `_new_row`, on every path
                refuse_unless_crud(entry, operation)
            done = None
            if idempotency_key is not None:
                done = self.keys.claim(conn, entry, operation, idempotency_key, user_role)
            yield conn, entry, done

    def _finish(
        self,
        conn: Connection,
        idempotency_key: str | None,
        entry: ModelEntry,
        record: dict[str, Any],
        user_role: str,
    ) -> dict[str, Any]:
        if idempotency_key is not None:
            self.keys.store_result(conn, idempotency_key, record)
        if "deleted" in record:
            return record
        return entry.permissions.view(record, user_role)

    # -- the data rules, for writers that do not come through an operation (commands) ----

    def check_data(self, entry: ModelEntry, data: Any) -> None:
        """Every check of field values short of the model's validation: an object, valid
        Unicode, no NUL, within the payload limit, only the model's fields. Raises
        `ValidationFailed`, `PayloadTooLarge` or `UnknownField`."""
        check_field_values("data", data)
        self._check_data(entry, data)

    def validate(self, entry: ModelEntry, data: Mapping[str, Any]) -> BaseModel:
        """The model's validation; raises `ValidationFailed` naming each field."""
        return self._validate(entry, data)

    # -- steps --------------------------------------------------------------------------

    def _check_data(self, entry: ModelEntry, data: Mapping[str, Any]) -> None:
        """What the operation could not check alone: size against settings, fields of the
        model. (Types, NUL characters and valid Unicode were checked when it was made.)"""
        limit = self.settings.max_payload_bytes
        size = len(to_json(data, fallback=str))
        if size > limit:
            raise PayloadTooLarge(
                f"Data for {entry.name!r} is {size} bytes; the limit is {limit} bytes.",
                model=entry.name,
                size=size,
                limit=limit,
                errors=[],
            )
        if data.keys() <= entry.records.field_types.keys():
            return
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
            return entry.model.model_validate(data)
        except ValidationError as exc:
            raise validation_failed(entry.name, exc) from None

    def _locked_row(
        self, conn: Connection, entry: ModelEntry, record_id: str, expected_version: int | None
    ) -> Mapping[Any, Any]:
        query = self.database.for_update(entry.records.select_by_id)
        row = conn.execute(query, {"record_id": record_id}).mappings().first()
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
        op: CreateRecord | UpdateRecord | DeleteRecord,
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
            user_id=op.user_id,
            changes=changes,
            metadata={"role": op.user_role, "version": record["version"]},
        )


def _created(entry: ModelEntry, record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"old": None, "new": record[name]} for name in entry.records.field_names}


def _not_found(entry: ModelEntry, record_id: Any) -> RecordNotFound:
    return RecordNotFound(
        f"Model {entry.name!r} has no record {record_id!r}.", model=entry.name, record_id=record_id
    )


def validation_failed(
    model_name: str, exc: ValidationError, prefix: builtins.list[str] | None = None
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
