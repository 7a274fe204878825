"""Record tasks, queue `crud`. Every result is the record as `user_role` may see it.

    records.create(model, data, user_id, user_role, idempotency_key=None)
    records.read(model, record_id, user_id, user_role)
    records.update(model, record_id, updates, user_id, user_role, expected_version=None,
                   idempotency_key=None)
    records.delete(model, record_id, user_id, user_role, expected_version=None,
                   idempotency_key=None)
    records.list(model, user_id, user_role, filters=None, order_by=None, page=1, page_size=None,
                 after=None, count=None)
    records.history(model, record_id=None, user_id=None, user_role, since=None, until=None,
                    actor=None)

Each signature is its operation's (registry/operations.py); `tasks.operations` makes the task.
"""

from __future__ import annotations

from typing import Any

from registry.audit import AuditEntry
from registry.operations import (
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    RecordHistory,
    UpdateRecord,
)

from .operations import operation_task, task_idempotency_key

__all__ = ["create", "delete", "history", "list_records", "read", "update"]


def entries_as_json(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    """Audit entries as JSON, oldest first."""
    return [entry.model_dump(mode="json") for entry in entries]


create = operation_task("records.create", CreateRecord, defaults=task_idempotency_key)
read = operation_task("records.read", GetRecord)
update = operation_task("records.update", UpdateRecord, defaults=task_idempotency_key)
delete = operation_task("records.delete", DeleteRecord, defaults=task_idempotency_key)
list_records = operation_task("records.list", ListRecords)
#: A record's audit entries, oldest first, with values masked for the role.
history = operation_task("records.history", RecordHistory, answer=entries_as_json)
