"""Running a command: load the aggregate, decide its events, append them with their audit
entries and idempotency record in one transaction.

Loading an aggregate reads one row, its newest event, which holds the whole state. A record
written while the model was in crud mode and not yet covered by the mode switch's backfill
has no event at its version: its row is the truth, and the command appends a `snapshot` of
it first, so the backfill and commands never disagree.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from ..audit import AuditLogger, Clock
from ..catalog import ModelEntry, OperationMode
from ..database import Database
from ..driver_statement import DriverStatement
from ..errors import (
    CommandRejected,
    OperationNotAllowed,
    RegistryError,
    ValidationFailed,
    VersionConflict,
)
from ..ids import new_id
from ..names import SYSTEM_COLUMNS
from ..permissions import Permission
from ..records.idempotency import IdempotencyKeys
from ..settings import CqrsSettings
from .commands import (
    CommandContext,
    CommandRequest,
    check_expected,
    handler_for,
    new_aggregate_id,
    require_state,
)
from .events import Event, EventDraft, EventMetadata
from .mode_rules import refuse_unless_crud
from .pg_statements import create_statement
from .projections import RecordProjection
from .store import EventStore
from .uniqueness import UniqueValues, duplicate_of

__all__ = ["Aggregate", "CommandExecutor", "ModelSource", "RecordRules", "require_commands"]


class ModelSource(Protocol):
    def resolve(self, conn: Connection, name: str) -> ModelEntry:
        """The current entry, checked against the registry version in `conn`'s transaction."""

    def peek(self, name: str) -> tuple[ModelEntry | None, int]:
        """The cached entry and the registry version it belongs to, without asking."""


class RecordRules(Protocol):
    """The record service's checks, so that commands apply exactly what CRUD writes do."""

    def check_data(self, entry: ModelEntry, data: Mapping[str, Any]) -> None:
        """Size, JSON-ness and unknown fields; raises `ValidationFailed` and subclasses."""

    def validate(self, entry: ModelEntry, data: Mapping[str, Any]) -> BaseModel:
        """The Pydantic model; raises `ValidationFailed` without echoing values."""


@dataclass
class Aggregate:
    """An aggregate as a command sees it."""

    id: str
    #: The record (JSON values, system columns included); None if absent or deleted.
    state: dict[str, Any] | None
    version: int
    #: A snapshot to append first, for a record that predates its model's events.
    snapshot: Event | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in (self.state or {}).items() if k not in SYSTEM_COLUMNS}


@dataclass
class Outcome:
    aggregate: Aggregate
    events: list[Event] = field(default_factory=list)
    replayed: dict[str, Any] | None = None

    def command_result(self) -> dict[str, Any]:
        return {
            "aggregate_id": self.aggregate.id,
            "version": self.aggregate.version,
            "position": self.events[-1].position if self.events else None,
            "events": [{"type": e.type, "version": e.version} for e in self.events
                       if e.type != "snapshot"],
        }


def require_commands(entry: ModelEntry) -> None:
    if entry.operation_mode is OperationMode.CRUD:
        raise OperationNotAllowed(
            f"Model {entry.name!r} is in crud mode, which takes no commands: use "
            "records.create, records.update and records.delete, or register it in cqrs or "
            "hybrid mode.",
            model=entry.name,
            mode=entry.operation_mode.value,
            use=["records.create", "records.update", "records.delete"],
        )


class CommandExecutor:
    def __init__(
        self,
        database: Database,
        store: EventStore,
        audit: AuditLogger,
        models: ModelSource,
        rules: RecordRules,
        clock: Clock,
        settings: CqrsSettings,
    ) -> None:
        self.database = database
        self.store = store
        self.audit = audit
        self.models = models
        self.rules = rules
        self.clock = clock
        self.settings = settings
        self.unique = UniqueValues(database, store)
        self._create_statements: dict[tuple[str, int, str | None, bool], DriverStatement] = {}
        self._projections: dict[tuple[str, int], RecordProjection] = {}
        self.keys = IdempotencyKeys(database, clock)

    def execute(
        self,
        command: CommandRequest,
        user_id: str | None,
        user_role: str,
        *,
        key_operation: str = "command",
        check_mode: bool = True,
    ) -> Outcome:
        """Run the command; a lost race for the next version is run again when the command
        named no `expected_version`. Raises `VersionConflict`, `CommandRejected`,
        `OperationNotAllowed`, `PermissionDenied`, `ValidationFailed`, `RecordNotFound`."""
        if self.database.is_postgresql and command.type == "create":
            done = self._create_in_one_statement(command, user_id, user_role, key_operation,
                                                 check_mode)
            if done is not None:
                return done
        attempts = self.settings.command_attempts if command.expected_version is None else 1
        for attempt in range(attempts):
            try:
                return self._attempt(command, user_id, user_role, key_operation, check_mode)
            except VersionConflict:
                if attempt == attempts - 1 or command.type == "create":
                    raise
        raise AssertionError("unreachable")

    def _attempt(
        self,
        command: CommandRequest,
        user_id: str | None,
        user_role: str,
        key_operation: str,
        check_mode: bool,
    ) -> Outcome:
        entry: ModelEntry | None = None
        try:
            with self.database.write() as conn:
                entry = self.models.resolve(conn, command.model)
                return self._run(conn, entry, command, user_id, user_role, key_operation,
                                 check_mode)
        except sa.exc.IntegrityError as exc:
            # A hybrid table's unique index refused the new state.
            duplicate = None if entry is None else duplicate_of(exc, entry)
            if duplicate is None:
                raise
            raise duplicate from None

    def _run(
        self,
        conn: Connection,
        entry: ModelEntry,
        command: CommandRequest,
        user_id: str | None,
        user_role: str,
        key_operation: str,
        check_mode: bool,
    ) -> Outcome:
        if check_mode:
            require_commands(entry)
        elif entry.operation_mode is not OperationMode.HYBRID:
            # A direct write routed here by a cached mode that has changed since.
            refuse_unless_crud(entry, key_operation)
            raise NowCrud()
        hybrid = entry.operation_mode is OperationMode.HYBRID
        if hybrid:
            # Before touching the table: a projection rebuild swapping it waits for us.
            self.store.lock_for_append(conn)
        if command.command_id is not None:
            stored = self.keys.take(conn, entry.name, key_operation, command.command_id)
            if stored is not None:
                return Outcome(Aggregate(command.aggregate_id or "", None, 0),
                               replayed=stored["result"])
        if command.type == "create" and command.aggregate_id is None:
            # A fresh random id has no events and no row: nothing to load.
            aggregate = Aggregate(new_aggregate_id(command), None, 0)
        else:
            aggregate = self.load(conn, entry, new_aggregate_id(command))
        now = self.clock()
        meta = EventMetadata(user_id=user_id, role=user_role, command_id=command.command_id,
                             correlation_id=command.correlation_id)
        decided = self._decide(entry, command, aggregate, meta, now)
        if not hybrid:
            self.unique.check(conn, entry, aggregate.state, decided)
        pending = ([aggregate.snapshot] if aggregate.snapshot else []) + decided
        audit = [self._audit_row(entry, event, user_id, user_role) for event in pending]
        appended = self.store.append(conn, pending, audit)
        if hybrid:
            RecordProjection(entry).apply(conn, appended)
        outcome = Outcome(self._after(aggregate, appended), appended)
        if command.command_id is not None:
            self.keys.store_result(conn, command.command_id,
                                   self.stored_form(outcome, key_operation))
        return outcome

    # -- a create in one statement (PostgreSQL) -----------------------------------------

    def _create_in_one_statement(
        self,
        command: CommandRequest,
        user_id: str | None,
        user_role: str,
        key_operation: str,
        check_mode: bool,
    ) -> Outcome | None:
        """The create decided on the cached model and appended by one statement that checks
        the cache was current (see `pg_statements`); None whenever the full path must
        decide: a model not cached, in another mode, or with unique fields to check in cqrs
        mode, a refusal (only final on a verified model), a stale cache, an aggregate id
        in use, a command id used before. The full path then gives the exact answer."""
        entry, seen_version = self.models.peek(command.model)
        if entry is None or not self._fits_one_statement(entry, check_mode):
            return None
        aggregate = Aggregate(new_aggregate_id(command), None, 0)
        meta = EventMetadata(user_id=user_id, role=user_role, command_id=command.command_id,
                             correlation_id=command.correlation_id)
        try:
            event = self._create(entry, command, aggregate, meta, self.clock())
        except RegistryError:
            return None
        hybrid = entry.operation_mode is OperationMode.HYBRID
        key = None if command.command_id is None else key_operation
        params = self._one_statement_params(entry, event, user_id, user_role, key, hybrid)
        params["seen_version"] = seen_version
        try:
            position = self._append_create(entry, key, hybrid, params)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # A used command id, a hybrid table's unique value, or a table a stale cache
            # does not know: all are decided (and named) on the current model.
            return None
        if position is None:
            return None
        appended = event.model_copy(update={"position": position})
        return Outcome(self._after(aggregate, [appended]), [appended])

    def _fits_one_statement(self, entry: ModelEntry, check_mode: bool) -> bool:
        mode = entry.operation_mode
        if mode is OperationMode.CQRS:
            # A cqrs model's unique values are checked by reading (see uniqueness.py).
            return check_mode and not self.unique.unique_fields(entry)
        return mode is OperationMode.HYBRID

    def _one_statement_params(
        self, entry: ModelEntry, event: Event, user_id: str | None, user_role: str,
        key: str | None, hybrid: bool,
    ) -> dict[str, Any]:
        params = event.to_row()
        audit = self._audit_row(entry, event, user_id, user_role)
        assert audit is not None
        params.update({f"a_{name}": value for name, value in audit.items()})
        if key is not None:
            params.update(k_key=event.metadata.command_id, k_model=entry.name,
                          k_operation=key, k_created_at=self.clock())
            if key == "command":
                params["k_events"] = [{"type": event.type, "version": event.version}]
            else:
                params["k_result"] = dict(event.state or {})
        if hybrid:
            row = self._projection(entry).row_of(event)
            params.update({f"r_{name}": value for name, value in row.items()})
        return params

    def _append_create(
        self, entry: ModelEntry, key: str | None, hybrid: bool, params: dict[str, Any]
    ) -> int | None:
        """Run the create's statement; the event's position, None if nothing was appended.

        A cqrs create is one statement, which PostgreSQL runs as its own transaction
        (autocommit: no BEGIN and COMMIT round trips), on the driver. A hybrid one first
        takes the appenders' lock in its transaction, before the statement touches the
        record table (see `_run`)."""
        statement = self._create_statement(entry, key, hybrid)
        if hybrid:
            with self.database.write() as conn:
                self.store.lock_for_append(conn)
                position: int | None = conn.execute(statement.statement, params).one().position
            return position
        with self.database.driver_autocommit() as driver:
            row = statement.first(driver, params)
        assert row is not None
        appended: int | None = row[1]
        return appended

    def _create_statement(
        self, entry: ModelEntry, key: str | None, hybrid: bool
    ) -> DriverStatement:
        cache_key = (entry.name, entry.version, key, hybrid)
        statement = self._create_statements.get(cache_key)
        if statement is None:
            built = create_statement(entry.records.table, key=key, hybrid=hybrid)
            statement = DriverStatement(built, self.database.engine.dialect)
            self._create_statements[cache_key] = statement
        return statement

    def _projection(self, entry: ModelEntry) -> RecordProjection:
        key = (entry.name, entry.version)
        projection = self._projections.get(key)
        if projection is None:
            projection = self._projections[key] = RecordProjection(entry)
        return projection

    # -- loading -----------------------------------------------------------------------

    def load(self, conn: Connection, entry: ModelEntry, aggregate_id: str) -> Aggregate:
        last = self.store.last_event(conn, entry.name, aggregate_id)
        row = conn.execute(entry.records.select_by_id, {"record_id": aggregate_id}).mappings()
        found = row.first()
        if found is not None and (last is None or found["version"] > last.version):
            record = entry.records.to_record(found)
            snapshot = Event(
                model=entry.name, aggregate_id=aggregate_id, version=found["version"],
                type="snapshot", data={"state": record}, schema_version=entry.version,
                timestamp=self.clock(),
            )
            return Aggregate(aggregate_id, record, found["version"], snapshot)
        if last is None:
            return Aggregate(aggregate_id, None, 0)
        return Aggregate(aggregate_id, None if last.is_deletion else last.state, last.version)

    @staticmethod
    def _after(aggregate: Aggregate, appended: list[Event]) -> Aggregate:
        if not appended:
            return aggregate
        last = appended[-1]
        return Aggregate(aggregate.id, None if last.is_deletion else last.state, last.version)

    # -- deciding ----------------------------------------------------------------------

    def _decide(
        self,
        entry: ModelEntry,
        command: CommandRequest,
        aggregate: Aggregate,
        meta: EventMetadata,
        now: datetime.datetime,
    ) -> list[Event]:
        if command.type == "create":
            return [self._create(entry, command, aggregate, meta, now)]
        if command.type == "delete":
            return [self._delete(entry, command, aggregate, meta, now)]
        if command.type == "update":
            event = self._change(entry, command.data, aggregate, "updated", meta, now, command)
            return [event] if event is not None else []
        return self._custom(entry, command, aggregate, meta, now)

    def _event(
        self, entry: ModelEntry, aggregate_id: str, version: int, type_: str,
        data: dict[str, Any], meta: EventMetadata, now: datetime.datetime,
    ) -> Event:
        return Event.model_construct(
            position=None, event_id=new_id(), model=entry.name, aggregate_id=aggregate_id,
            version=version, type=type_, data=data, metadata=meta,
            schema_version=entry.version, timestamp=now, ns="events",
        )

    def _create(
        self, entry: ModelEntry, command: CommandRequest, aggregate: Aggregate,
        meta: EventMetadata, now: datetime.datetime,
    ) -> Event:
        entry.permissions.require(meta.role or "", Permission.CREATE)
        self.rules.check_data(entry, command.data)
        entry.permissions.require_writable(meta.role or "", command.data.keys())
        instance = self.rules.validate(entry, command.data)
        if aggregate.version != 0 or aggregate.snapshot is not None:
            raise VersionConflict(
                f"Record {aggregate.id!r} of {entry.name!r} already exists (version "
                f"{aggregate.version}); a create needs a new id.",
                model=entry.name, record_id=aggregate.id, expected_version=0,
                actual_version=aggregate.version,
            )
        check_expected(command, aggregate.id, 0)
        record = entry.records.to_record({
            "id": aggregate.id, "version": 1, "created_at": now, "updated_at": now,
            "created_by": meta.user_id, "updated_by": meta.user_id,
            **entry.records.column_values(instance),
        })
        changes = {name: {"old": None, "new": record[name]} for name in entry.records.field_names}
        return self._event(entry, aggregate.id, 1, "created",
                           {"changes": changes, "state": record}, meta, now)

    def _delete(
        self, entry: ModelEntry, command: CommandRequest, aggregate: Aggregate,
        meta: EventMetadata, now: datetime.datetime,
    ) -> Event:
        entry.permissions.require(meta.role or "", Permission.DELETE)
        state = require_state(entry.name, aggregate.id, aggregate.state, aggregate.version)
        check_expected(command, aggregate.id, aggregate.version)
        changes = {name: {"old": state.get(name), "new": None}
                   for name in entry.records.field_names}
        return self._event(entry, aggregate.id, aggregate.version + 1, "deleted",
                           {"changes": changes}, meta, now)

    def _change(
        self, entry: ModelEntry, updates: Mapping[str, Any], aggregate: Aggregate, type_: str,
        meta: EventMetadata, now: datetime.datetime, command: CommandRequest,
    ) -> Event | None:
        entry.permissions.require(meta.role or "", Permission.UPDATE)
        self.rules.check_data(entry, updates)
        entry.permissions.require_writable(meta.role or "", updates.keys())
        state = require_state(entry.name, aggregate.id, aggregate.state, aggregate.version)
        check_expected(command, aggregate.id, aggregate.version)
        instance = self.rules.validate(entry, {**aggregate.fields(), **updates})
        record = entry.records.to_record({
            **state, **entry.records.column_values(instance),
            "version": aggregate.version + 1, "updated_at": now, "updated_by": meta.user_id,
        })
        changes = {
            name: {"old": state.get(name), "new": record[name]}
            for name in entry.records.field_names
            if state.get(name) != record[name]
        }
        if not changes and type_ == "updated":
            return None  # nothing changes, so nothing is appended or audited
        return self._event(entry, aggregate.id, aggregate.version + 1, type_,
                           {"changes": changes, "state": record}, meta, now)

    def _custom(
        self, entry: ModelEntry, command: CommandRequest, aggregate: Aggregate,
        meta: EventMetadata, now: datetime.datetime,
    ) -> list[Event]:
        handler = handler_for(entry.name, command.type)
        check_expected(command, aggregate.id, aggregate.version)
        context = CommandContext(
            model=entry.name, aggregate_id=aggregate.id,
            state=aggregate.fields() if aggregate.state is not None else None,
            version=aggregate.version, payload=dict(command.data),
            user_id=meta.user_id, user_role=meta.role or "",
        )
        drafts = _drafts(entry.name, command.type, handler(context))
        events: list[Event] = []
        current = aggregate
        for draft in drafts:
            if draft.deletes:
                plain = CommandRequest(type="delete", model=entry.name)
                event = self._delete(entry, plain, current, meta, now)
                event = self._event(entry, current.id, event.version, draft.type,
                                    {**event.data, "deleted": True}, meta, now)
            else:
                plain = CommandRequest(type="update", model=entry.name)
                made = self._change(entry, draft.changes, current, draft.type, meta, now, plain)
                assert made is not None
                event = made
            events.append(event)
            current = self._after(current, [event])
        return events

    # -- writing -----------------------------------------------------------------------

    def _audit_row(
        self, entry: ModelEntry, event: Event, user_id: str | None, user_role: str
    ) -> dict[str, Any] | None:
        """The outbox row of an event's audit entry; None for a snapshot (not a change)."""
        if event.type == "snapshot":
            return None
        if event.type == "created":
            operation, version = "create", event.version
        elif event.is_deletion:
            operation, version = "delete", event.version - 1  # as a CRUD delete records it
        else:
            operation, version = "update", event.version
        return self.audit.entry_values(
            at=event.timestamp, model_name=entry.name, record_id=event.aggregate_id,
            operation=operation, user_id=user_id, changes=event.changes,
            metadata={"role": user_role, "version": version, "event": event.type,
                      "command_id": event.metadata.command_id},
        )

    @staticmethod
    def stored_form(outcome: Outcome, key_operation: str) -> dict[str, Any]:
        if key_operation == "command":
            return outcome.command_result()
        if key_operation == "delete":
            return {"id": outcome.aggregate.id, "deleted": True,
                    "version": outcome.aggregate.version - 1}
        return dict(outcome.aggregate.state or {})


class NowCrud(Exception):
    """A direct write reached the executor for a model that is now in crud mode."""


def _drafts(model: str, name: str, returned: Any) -> list[EventDraft]:
    items = returned if isinstance(returned, list | tuple) else [returned]
    drafts = []
    for item in items:
        try:
            drafts.append(item if isinstance(item, EventDraft) else EventDraft.model_validate(item))
        except ValidationError:
            raise ValidationFailed(
                f"Handler of command {name!r} for {model!r} returned something that is not an "
                "event draft.",
                model=model, command=name, errors=[],
            ) from None
    if any(d.type in ("created", "updated", "deleted", "snapshot") for d in drafts):
        raise CommandRejected(
            f"Handler of command {name!r} for {model!r} returned a built-in event type; "
            "custom events need their own names.",
            model=model, command=name, reason="built-in event type",
        )
    return drafts

