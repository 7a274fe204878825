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
from ..errors import OperationNotAllowed, RegistryError
from .commands import CommandRequest
from .execution import CommandExecutor

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

    def _entry(self, model: Any) -> ModelEntry | None:
        """The cached model; one this process has not loaded yet is loaded now (its mode
        cannot be assumed)."""
        if not isinstance(model, str):
            return None
        entry, _version = self.models.peek(model)
        if entry is not None:
            return entry
        try:
            with self.database.read() as conn:
                return self.models.resolve(conn, model)
        except RegistryError:
            return None  # the record service reports it as it always has

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
        if entry is None or entry.operation_mode is OperationMode.CRUD:
            return None
        if entry.operation_mode is OperationMode.CQRS:
            raise OperationNotAllowed(
                f"Model {entry.name!r} is in cqrs mode: records.{operation} is refused; send "
                f"cqrs.execute_command with type {operation!r} instead.",
                model=entry.name, mode=entry.operation_mode.value,
                use="cqrs.execute_command", operation=f"records.{operation}",
            )
        command = CommandRequest.parse({
            "type": _COMMAND_FOR[operation], "model": model, "aggregate_id": record_id,
            "data": dict(data) if data is not None else {},
            "expected_version": expected_version, "command_id": idempotency_key,
        })
        outcome = self.executor.execute(
            command, user_id, user_role, key_operation=operation, check_mode=False
        )
        answer = outcome.replayed
        if answer is None:
            answer = self.executor.stored_form(outcome, operation)
        if "deleted" in answer:
            return answer
        return entry.permissions.view(answer, user_role, entry.known_fields)
