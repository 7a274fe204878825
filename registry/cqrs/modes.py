"""What each operation mode does with a direct record write (`records.create/update/delete`).

    crud    the record service writes the table (None here: the caller goes on as before)
    cqrs    refused with `OperationNotAllowed`: writes go through commands
    hybrid  run as the matching built-in command, whose transaction also writes the table

The mode is taken from the process's cached model, so that a crud write costs nothing extra.
A write that slips through as crud just after a switch to cqrs or hybrid leaves a row newer
than the model's last event; the next command on that record (and the switch's backfill)
appends a snapshot of the row first, so events and rows still agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from ..catalog import ModelEntry, OperationMode
from ..database import Database
from ..errors import RegistryError
from .commands import CommandRequest
from .execution import CommandExecutor, NowCrud
from .mode_rules import refuse_unless_crud

__all__ = ["WriteRouter"]

_COMMAND_FOR = {"create": "create", "update": "update", "delete": "delete"}


class CachedModels(Protocol):
    def peek(self, name: str) -> tuple[ModelEntry | None, int]: ...

    def resolve(self, conn: Connection, name: str) -> ModelEntry: ...


class WriteRouter:
    def __init__(
        self, database: Database, models: CachedModels, executor: CommandExecutor
    ) -> None:
        self.database = database
        self.models = models
        self.executor = executor

    def _fresh(self, model: str) -> ModelEntry | None:
        try:
            with self.database.read() as conn:
                return self.models.resolve(conn, model)
        except RegistryError:
            return None

    def _entry(self, model: Any) -> ModelEntry | None:
        """The cached model; one this process has not loaded yet is loaded now (its mode
        cannot be assumed)."""
        if not isinstance(model, str):
            return None
        entry, _version = self.models.peek(model)
        # One this process has not loaded yet is loaded now (an unknown model the record
        # service reports as it always has).
        return entry if entry is not None else self._fresh(model)

    def leaves_to_records(self, model: str) -> bool:
        """Whether the cached model is known to be crud, so `route` would hand the write
        back untouched: the check every crud write makes, without building the command's
        arguments."""
        entry, _version = self.models.peek(model)
        return entry is not None and entry.operation_mode is OperationMode.CRUD

    def route(
        self,
        operation: str,
        model: str,
        *,
        data: Mapping[str, Any] | None = None,
        record_id: str | None = None,
        user_id: str | None,
        user_role: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | None:
        """The write's answer when the mode takes it over; None for a crud model."""
        entry = self._entry(model)
        if entry is not None and entry.operation_mode is OperationMode.CQRS:
            entry = self._fresh(model)  # a refusal is only final on the current mode
        if entry is None or entry.operation_mode is OperationMode.CRUD:
            return None
        if entry.operation_mode is OperationMode.CQRS:
            refuse_unless_crud(entry, operation)
        command = CommandRequest.parse({
            "type": _COMMAND_FOR[operation], "model": model, "aggregate_id": record_id,
            "data": dict(data) if data is not None else {},
            "expected_version": expected_version, "command_id": idempotency_key,
        })
        try:
            outcome = self.executor.execute(
                command, user_id, user_role, key_operation=operation, check_mode=False
            )
        except NowCrud:
            return None  # switched back to crud since this process looked: the service writes
        answer = outcome.replayed
        if answer is None:
            answer = self.executor.stored_form(outcome, operation)
        if "deleted" in answer:
            return answer
        return entry.permissions.view(answer, user_role, entry.known_fields)
