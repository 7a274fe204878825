"""The one rule the record service needs from CQRS: a direct write is for crud models only.

It lives apart from `modes.py` (which runs hybrid writes as commands) so that the record
service can check it without importing the command machinery.
"""

from __future__ import annotations

from ..catalog import ModelEntry, OperationMode
from ..errors import OperationNotAllowed

__all__ = ["refuse_unless_crud"]


def refuse_unless_crud(entry: ModelEntry, operation: str) -> None:
    """Raises `OperationNotAllowed` (details: mode, use) unless the model is in crud mode.

    The record service checks this on the model it has just verified against the database,
    so a process whose cache still held the old mode cannot write around a mode switch; the
    registry answers a hybrid model's refusal by running the write as a command."""
    if entry.operation_mode is OperationMode.CRUD:
        return
    raise OperationNotAllowed(
        f"Model {entry.name!r} is in {entry.operation_mode.value} mode: records.{operation} "
        f"is refused; send cqrs.execute_command with type {operation!r} instead.",
        model=entry.name, mode=entry.operation_mode.value,
        use="cqrs.execute_command", operation=f"records.{operation}",
    )
