"""`DynamicModelRegistry`: register models at runtime and manage their records.

A registry is a cache over the shared database. Before every operation it reads the registry
version (one primary-key lookup, inside the operation's own transaction) and reloads the
definitions that changed, so an operation that starts after a registration committed always
sees it, in whichever process it runs (Invariant 2).

`DynamicModelRegistry()` with no arguments is a fresh in-memory SQLite registry, for tests and
scripts; `DynamicModelRegistry(database_url=...)` or `DynamicModelRegistry.from_settings()`
opens a shared database.
"""

from __future__ import annotations

import builtins
import datetime
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from . import inspections
from .audit import AuditEntry, AuditLogger, Clock, utc_now
from .catalog import Catalog, ModelEntry, OperationMode
from .cqrs.api import CqrsApi
from .cqrs.service import CqrsService
from .database import Database
from .errors import (
    InvalidPermissions,
    InvalidSchema,
    ModelNotFound,
    OperationNotAllowed,
    ValidationFailed,
)
from .imports import ImportService
from .imports.create_many import BulkCreator
from .imports.inprocess import BulkMethods
from .model_cache import ModelCache
from .names import validate_field_name, validate_model_name
from .operations import (
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    Operation,
    RecordAsOf,
    RecordHistory,
    UpdateRecord,
    check_caller,
    invalid_argument,
)
from .permissions import ModelPermissions, load_masks, require_manager
from .records.service import RecordService
from .records.table import RecordTable
from .schema import model_from_schema, model_to_schema
from .settings import MAX_RETENTION_DAYS, Settings
from .ui import UISchema, UISchemaGenerator, to_rjsf

__all__ = ["DynamicModelRegistry"]

IN_MEMORY_URL = "sqlite://"
V = TypeVar("V")


class DynamicModelRegistry(CqrsApi, BulkMethods):
    """Central registry for dynamic models, backed by SQLite or PostgreSQL."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock = utc_now,
        database: Database | None = None,
    ) -> None:
        self.settings = settings or Settings()
        load_masks(self.settings.models.masks)
        self.database = database or Database(
            database_url or IN_MEMORY_URL,
            pool_size=self.settings.database.pool_size,
            echo=self.settings.database.echo,
            sqlite_synchronous=self.settings.database.sqlite_synchronous,
        )
        self.database.create_catalog()
        self.clock = clock
        self.audit_logger = AuditLogger(
            self.database,
            clock=clock,
            compression_enabled=self.settings.models.audit_compression,
            settings=self.settings.audit,
            retention_days=self.settings.models.audit_retention_days,
        )
        self.catalog = Catalog(self.database, self.settings.models, clock, self.audit_logger)
        self.model_cache = ModelCache(self.catalog)
        self.records = RecordService(
            self.database, self.audit_logger, self.settings.models, self.model_cache, clock
        )
        # Import jobs and create_many (registry/imports/).
        self.imports = ImportService(
            self.database, self.audit_logger, self.model_cache, clock,
            stall_after=self.settings.models.import_stall_after_s,
        )
        self.bulk = BulkCreator(
            self.database, self.audit_logger, self.settings.models, self.model_cache, clock
        )
        self.cqrs = CqrsService(
            self.database, self.audit_logger, self.settings, self.model_cache, self.records,
            clock,
        )
        self._ui_cache: dict[tuple[str, int], UISchema] = {}
        self.refresh()

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, **options: Any
    ) -> DynamicModelRegistry:
        """Open the database that settings name (`Settings.load()` when none are given)."""
        settings = settings or Settings.load()
        return cls(settings.database.url, settings=settings, **options)

    # -- the specification's views ------------------------------------------------------

    @property
    def models(self) -> Mapping[str, type[BaseModel]]:
        return _LiveView(self, lambda entry: entry.model)

    @property
    def permissions(self) -> Mapping[str, ModelPermissions]:
        return _LiveView(self, lambda entry: entry.permissions)

    @property
    def ui_schemas(self) -> Mapping[str, UISchema]:
        return _LiveView(self, self._ui_schema_of)

    # -- registration -------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model_class: type[BaseModel],
        operation_mode: OperationMode | str = OperationMode.CRUD,
        *,
        permissions: ModelPermissions | Mapping[str, Any] | None = None,
        force: bool = False,
        ui_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        provenance: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        user_role: str | None = None,
    ) -> ModelEntry:
        """Register or re-register a model; returns it at its stored version.

        Raises `InvalidName`, `InvalidSchema` (a model that cannot be stored as JSON Schema),
        `InvalidPermissions`, `SchemaIncompatible` (unless `force`), and `PermissionDenied`
        for a role outside `models.manager_roles` (no role: this process's own code).
        """
        self._require_manager(user_id, user_role, "register models")
        validate_model_name(name)
        schema = model_to_schema(model_class, name)
        return self._register(
            name, model_class, schema, operation_mode, permissions, force, ui_overrides,
            provenance or {"source": "pydantic", "class": model_class.__qualname__}, user_id,
        )

    def register_schema(
        self,
        name: str,
        schema: Mapping[str, Any],
        operation_mode: OperationMode | str = OperationMode.CRUD,
        *,
        permissions: ModelPermissions | Mapping[str, Any] | None = None,
        force: bool = False,
        ui_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        provenance: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        user_role: str | None = None,
    ) -> ModelEntry:
        """Register a model from JSON Schema (what producers without Python classes send);
        raises as `register_model`."""
        self._require_manager(user_id, user_role, "register models")
        validate_model_name(name)
        model = model_from_schema(name, schema)
        return self._register(
            name, model, model_to_schema(model, name), operation_mode, permissions, force,
            ui_overrides, provenance or {"source": "json_schema"}, user_id,
        )

    def register_inspection(
        self, inspection: Any, model_name: str | None = None, **options: Any
    ) -> str:
        """Register an inspector's inspection (its document or `Inspection`); returns the
        model name. Options as `register_schema`; see `registry.inspections`."""
        return inspections.register_inspection(self, inspection, model_name, **options)

    async def register_from_resource(
        self, resource: Any, model_name: str | None = None, **inspect_options: Any
    ) -> str:
        """Inspect a resource (file path or `{"kind", "location", "table"?}`) and register
        the model it proposes; returns the model name."""
        return await inspections.register_from_resource(
            self, resource, model_name, **inspect_options
        )

    def set_permissions(
        self,
        name: str,
        permissions: ModelPermissions | Mapping[str, Any],
        *,
        user_id: str | None = None,
        user_role: str | None = None,
    ) -> ModelEntry:
        """Store new permissions for a model; every process uses them from its next operation.
        Raises `PermissionDenied` for a role outside `models.manager_roles`."""
        self._require_manager(user_id, user_role, "change permissions")
        with self.database.write() as conn:
            # Lock first, then read: a registration committing meanwhile is seen, not undone.
            self.catalog.lock_state(conn)
            entry = self.model_cache.resolve(conn, name)
            parsed = self._parse_permissions(entry.name, entry.model, permissions)
            saved = self.catalog.update_permissions(conn, entry, parsed, user_id=user_id)
        self.model_cache.remember(saved)
        return saved

    def _require_manager(self, user_id: str | None, user_role: str | None, action: str) -> None:
        if user_role is not None:  # none is this process's own code; one given is checked
            check_caller(user_id, user_role)
        require_manager(user_role, self.settings.models.manager_roles, action)

    def model_info(self, name: str) -> ModelEntry:
        with self.database.read() as conn:
            return self.model_cache.resolve(conn, name)

    def list_models(self) -> list[dict[str, Any]]:
        """A JSON summary of every registered model, sorted by name."""
        self.refresh()
        entries = self.model_cache.entries()
        return [entries[name].describe() for name in sorted(entries)]

    def model_history(self, name: str) -> list[dict[str, Any]]:
        """Every stored version of a model's definition, oldest first."""
        with self.database.read() as conn:
            self.model_cache.resolve(conn, name)
            return self.catalog.history(conn, name)

    # -- UI -----------------------------------------------------------------------------

    def get_ui_schema(self, name: str, user_role: str | None = None) -> UISchema:
        """The model's UI schema; with a role, only what that role may see and write."""
        entry = self.model_info(name)
        schema = self._ui_schema_of(entry)
        return schema if user_role is None else schema.for_role(entry.permissions, user_role)

    def export_form(self, name: str, user_role: str) -> dict[str, Any]:
        """JSON Schema plus uiSchema for react-jsonschema-form, as the role may see it."""
        entry = self.model_info(name)
        return to_rjsf(entry.schema, self.get_ui_schema(name, user_role))

    # -- records: sugar over the operations (registry/operations.py) --------------------

    def handle(self, operation: Operation) -> Any:
        """Carry out a record operation built elsewhere (a task, a client, a test). A write
        to a model in cqrs or hybrid mode goes where its mode sends it (registry/cqrs)."""
        if isinstance(operation, CreateRecord | UpdateRecord | DeleteRecord):
            return self._write(operation)
        return self.records.handle(operation)

    def _write(self, op: CreateRecord | UpdateRecord | DeleteRecord) -> dict[str, Any]:
        routed = self._route_by_mode(op)
        if routed is not None:
            return routed
        try:
            written: dict[str, Any] = self.records.handle(op)
        except OperationNotAllowed as refused:
            # This process's cache held the model as crud; the record service has since
            # seen its current mode. A hybrid model takes the write as a command.
            if refused.details.get("mode") != "hybrid":
                raise
            routed = self._route_by_mode(op)
            if routed is None:
                raise
            return routed
        return written

    def _route_by_mode(
        self, op: CreateRecord | UpdateRecord | DeleteRecord
    ) -> dict[str, Any] | None:
        """The write's answer when its model's mode takes it over; None for a crud model."""
        if self.cqrs.writes.leaves_to_records(op.model):
            return None
        caller: dict[str, Any] = {"user_id": op.user_id, "user_role": op.user_role,
                  "idempotency_key": op.idempotency_key}
        if isinstance(op, CreateRecord):
            return self.cqrs.writes.route("create", op.model, data=op.data, **caller)
        if isinstance(op, UpdateRecord):
            return self.cqrs.writes.route(
                "update", op.model, data=op.updates, record_id=op.record_id,
                expected_version=op.expected_version, **caller,
            )
        return self.cqrs.writes.route(
            "delete", op.model, record_id=op.record_id, expected_version=op.expected_version,
            **caller,
        )

    def create(
        self,
        model_name: str,
        data: Mapping[str, Any],
        user_id: str | None = None,
        user_role: str = "user",
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Validate and store a new record; returns it as the role may see it."""
        return self._write(CreateRecord.build(
            model=model_name, data=data, user_id=user_id, user_role=user_role,
            idempotency_key=idempotency_key,
        ))

    def read(
        self, model_name: str, record_id: str, user_id: str | None = None, user_role: str = "user"
    ) -> dict[str, Any]:
        return self.records.read(GetRecord.build(
            model=model_name, record_id=record_id, user_id=user_id, user_role=user_role
        ))

    def update(
        self,
        model_name: str,
        record_id: str,
        updates: Mapping[str, Any],
        user_id: str | None = None,
        user_role: str = "user",
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._write(UpdateRecord.build(
            model=model_name, record_id=record_id, updates=updates, user_id=user_id,
            user_role=user_role, expected_version=expected_version,
            idempotency_key=idempotency_key,
        ))

    def delete(
        self,
        model_name: str,
        record_id: str,
        user_id: str | None = None,
        user_role: str = "user",
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._write(DeleteRecord.build(
            model=model_name, record_id=record_id, user_id=user_id, user_role=user_role,
            expected_version=expected_version, idempotency_key=idempotency_key,
        ))

    def list(
        self,
        model_name: str,
        user_id: str | None = None,
        user_role: str = "user",
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int | None = None,
        after: str | None = None,
        count: str | None = None,
    ) -> dict[str, Any]:
        """One page of records: `{"items", "page", "page_size", "total", "total_exact",
        "next_cursor"}`; see registry/query/listing.py for filters, cursors and counts."""
        return self.records.list(ListRecords.build(
            model=model_name, user_id=user_id, user_role=user_role, filters=filters,
            order_by=order_by, page=page, page_size=page_size, after=after, count=count,
        ))

    def history(
        self,
        model_name: str,
        record_id: str | None = None,
        user_role: str = "user",
        *,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        actor: str | None = None,
    ) -> builtins.list[AuditEntry]:
        """Audit entries of a record (or, without one, of the model), oldest first, with old
        and new values masked for the role. `since` is inclusive, `until` exclusive, `actor`
        keeps one user's changes. Raises `PermissionDenied` for a role that may not read."""
        return self.records.history(RecordHistory.build(
            model=model_name, record_id=record_id, user_role=user_role, since=since,
            until=until, actor=actor,
        ))

    def as_of(
        self, model_name: str, record_id: str, at: datetime.datetime, user_role: str = "user"
    ) -> dict[str, Any]:
        """The record as it was at `at` (UTC when naive), rebuilt from its audit history, a
        deleted record included, as the role may see it. Raises `RecordNotFound` when the
        record did not exist then, `PermissionDenied` for a role that may not read."""
        return self.records.as_of(RecordAsOf.build(
            model=model_name, record_id=record_id, at=at, user_id=None, user_role=user_role
        ))

    def verify_audit(self) -> dict[str, Any]:
        """Verify the audit trail, and that it accounts for every stored record: each row
        equal, field by field, to what its history folds to (see `AuditTrail.verify`)."""
        return self.audit_logger.verify(self._stored_records)

    def _stored_records(self, conn: Connection) -> Iterator[tuple[str, dict[str, Any]]]:
        self.model_cache.sync(conn)
        for entry in list(self.model_cache.entries().values()):
            if entry.operation_mode is OperationMode.CQRS:
                # Its table is a projection that may lag: the events are what was written.
                for state in self.cqrs.store.live_states(conn, entry.name).values():
                    yield entry.name, state
                continue
            for row in conn.execute(sa.select(entry.records.table)).mappings():
                yield entry.name, entry.records.to_record(row)

    def purge_idempotency_keys(self, days: int | None = None) -> int:
        """Drop idempotency keys older than `days` (default `models.idempotency_retention_days`);
        returns how many were dropped."""
        keep = self.settings.models.idempotency_retention_days if days is None else days
        return self.records.purge_idempotency_keys(self.clock() - datetime.timedelta(days=keep))

    def cleanup_imports(
        self,
        older_than_days: float | None = None,
        *,
        dry_run: bool = False,
        user_id: str | None = None,
        user_role: str | None = None,
    ) -> dict[str, Any]:
        """Delete import jobs that ended more than `older_than_days` ago, with their chunk
        marks and rejected rows (records and their history stay); `dry_run` only counts.
        Without an age, `models.import_retention_days` applies, as the schedule runs it: a
        caller then chooses nothing, so no role is needed. Choosing the age takes the
        management permission (`models.manager_roles`). Raises `ValidationFailed` for a bad
        age, or no age while the retention is 0, and `PermissionDenied`. Returns
        `ImportService.cleanup`'s answer."""
        days = self._cleanup_age(older_than_days, user_id, user_role)
        if not isinstance(dry_run, bool):
            raise invalid_argument("dry_run", "must be true or false")
        before = self.clock() - datetime.timedelta(days=days)
        return self.imports.cleanup(before, dry_run=dry_run)

    def _cleanup_age(
        self, older_than_days: float | None, user_id: str | None, user_role: str | None
    ) -> float:
        """The age in days a cleanup takes: the one chosen, which the caller must be allowed
        to choose, or the retention setting's."""
        if older_than_days is not None:
            self._require_manager(user_id, user_role, "clean up import jobs")
            return _age_in_days(older_than_days)
        if user_role is not None:  # none is needed, but one given must be well formed
            check_caller(user_id, user_role)
        if self.settings.models.import_retention_days == 0:
            raise _no_age()
        return float(self.settings.models.import_retention_days)

    # -- sync ---------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reload definitions changed since this process last looked; True if any changed."""
        with self.database.read() as conn:
            return self.model_cache.sync(conn)

    def close(self) -> None:
        self.database.dispose()

    def _register(
        self,
        name: str,
        model: type[BaseModel],
        schema: dict[str, Any],
        operation_mode: OperationMode | str,
        permissions: ModelPermissions | Mapping[str, Any] | None,
        force: bool,
        ui_overrides: Mapping[str, Mapping[str, Any]] | None,
        provenance: Mapping[str, Any],
        user_id: str | None,
    ) -> ModelEntry:
        for field in model.model_fields:
            validate_field_name(name, field)
        mode = _operation_mode(name, operation_mode)
        if not isinstance(force, bool):
            raise InvalidSchema(f"force must be true or false, not {force!r}.", model=name)
        records = RecordTable.for_model(name, model)
        with self.database.write() as conn:
            # Lock first, then read what is stored: what this registration keeps (stored
            # permissions and UI overrides) is then what the last one committed.
            self.catalog.lock_state(conn)
            self.model_cache.sync(conn)
            previous = self.model_cache.cached(name)
            entry = ModelEntry(
                name=name,
                version=0,
                model=model,
                schema=schema,
                operation_mode=mode,
                permissions=self._permissions_for(name, model, permissions, previous),
                records=records,
                ui_overrides=self._ui_overrides_for(model, ui_overrides, previous),
                provenance=dict(provenance),
            )
            saved, _changed = self.catalog.register(conn, entry, force=force, user_id=user_id)
            backfill = self.cqrs.mode_switch_starts(conn, previous, saved)
        self.model_cache.remember(saved)
        if backfill:
            self.cqrs.backfill.run(saved.name)
        self.catalog.sync_indexes(saved)  # after commit: PostgreSQL builds them concurrently
        return saved

    def _permissions_for(
        self,
        name: str,
        model: type[BaseModel],
        given: ModelPermissions | Mapping[str, Any] | None,
        previous: ModelEntry | None,
    ) -> ModelPermissions:
        # Re-registering without permissions keeps the stored ones rather than resetting them,
        # in a copy: the cached entry stays as it is until the new one has committed.
        if given is None:
            if previous is None:
                return self.catalog.permissions_from_dict(name, None)
            kept = previous.permissions.copy()
            kept.field_permissions = {
                field: rule
                for field, rule in kept.field_permissions.items()
                if field in model.model_fields
            }
            return kept
        return self._parse_permissions(name, model, given)

    def _parse_permissions(
        self, name: str, model: type[BaseModel], given: ModelPermissions | Mapping[str, Any]
    ) -> ModelPermissions:
        if not isinstance(given, ModelPermissions | Mapping):  # a raw producer sends any JSON
            raise InvalidPermissions(
                f"Permissions of {name!r} must be an object, not {type(given).__name__}.",
                model=name,
            )
        parsed = (
            given
            if isinstance(given, ModelPermissions)
            else self.catalog.permissions_from_dict(name, given)
        )
        unknown = sorted(set(parsed.field_permissions) - set(model.model_fields))
        if unknown:
            raise InvalidPermissions(
                f"Permissions of {name!r} name fields it does not have: {unknown}.",
                model=name,
                fields=unknown,
            )
        parsed.to_dict()  # refuses unnamed mask callables before anything is stored
        return parsed

    def _ui_overrides_for(
        self,
        model: type[BaseModel],
        given: Mapping[str, Mapping[str, Any]] | None,
        previous: ModelEntry | None,
    ) -> dict[str, Any]:
        if given is None:
            return dict(previous.ui_overrides) if previous is not None else {}
        overrides = {field: dict(attrs) for field, attrs in given.items()}
        UISchemaGenerator.generate(model, self.settings.models.ui, overrides)  # validates them
        return overrides

    def _ui_schema_of(self, entry: ModelEntry) -> UISchema:
        key = (entry.name, entry.version)
        if key not in self._ui_cache:
            generated = UISchemaGenerator.generate(
                entry.model, self.settings.models.ui, entry.ui_overrides
            )
            self._ui_cache[key] = generated.model_copy(update={"model": entry.name})
        return self._ui_cache[key]


def _operation_mode(name: str, value: OperationMode | str) -> OperationMode:
    try:
        return OperationMode(value)
    except ValueError:
        modes = ", ".join(mode.value for mode in OperationMode)
        raise InvalidSchema(
            f"Operation mode {value!r} of {name!r} is not one of {modes}.", model=name
        ) from None


def _age_in_days(value: Any) -> float:
    fine = isinstance(value, int | float) and not isinstance(value, bool)
    if not fine or not math.isfinite(value) or not 0 <= value <= MAX_RETENTION_DAYS:
        why = f"must be a number of days, 0 to {MAX_RETENTION_DAYS}"
        raise invalid_argument("older_than_days", why)
    return float(value)


def _no_age() -> ValidationFailed:
    return ValidationFailed(
        "Say how old an ended import job must be to go (older_than_days): "
        "models.import_retention_days is 0, which keeps jobs until then.",
        errors=[{"loc": ["older_than_days"], "msg": "required while the retention is 0",
                 "type": "argument"}],
    )


class _LiveView(Mapping[str, V]):
    """A read-only mapping over the registry that is refreshed from the database on use."""

    def __init__(self, registry: DynamicModelRegistry, pick: Any) -> None:
        self._registry = registry
        self._pick = pick

    def _entries(self) -> dict[str, ModelEntry]:
        self._registry.refresh()
        return self._registry.model_cache.entries()

    def __getitem__(self, name: str) -> V:
        entry = self._entries().get(name)
        if entry is None:
            raise ModelNotFound(f"Model {name!r} is not registered.", model=name)
        value: V = self._pick(entry)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries()))

    def __len__(self) -> int:
        return len(self._entries())

