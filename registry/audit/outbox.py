"""What an audit entry is and the row it is written to the outbox as.

Invariant 1: a change and its outbox row commit together or not at all, because the logger
writes entries on the caller's connection. Each outbox row carries the keyed hash (`keys.py`)
of its canonical form (`blocks.entry_body`), so a pending entry changed later is detected, and
one rewritten with a hash made again is too, unless its writer holds the key.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from .blocks import entry_body, json_text
from .keys import AuditKeys

__all__ = ["AUDIT_NS", "AuditEntry", "Clock", "utc_now", "with_hash"]

AUDIT_NS = "audit.entries"
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditEntry(BaseModel):
    """One change to one record."""

    model_name: str
    record_id: str
    operation: str
    user_id: str | None
    timestamp: datetime.datetime
    #: field -> {"old": ..., "new": ...}, values in their JSON form.
    changes: dict[str, dict[str, Any]]
    metadata: dict[str, Any] = Field(default_factory=dict)
    ns: str = AUDIT_NS
    #: Position in the trail; set once the entry is stored.
    seq: int | None = None

    def to_row(self, keys: AuditKeys) -> dict[str, Any]:
        """The entry's outbox columns, its hash signed with the current key."""
        row = {
            "model": self.model_name,
            "record_id": self.record_id,
            "operation": self.operation,
            "user_id": self.user_id,
            "ts": self.timestamp,
            "changes": to_jsonable_python(self.changes),
            "metadata": to_jsonable_python(self.metadata),
            "ns": self.ns,
        }
        return with_hash(row, keys)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AuditEntry:
        return cls(
            seq=row["seq"],
            model_name=row["model"],
            record_id=row["record_id"],
            operation=row["operation"],
            user_id=row["user_id"],
            timestamp=row["ts"],
            changes=row["changes"],
            metadata=row["metadata"],
            ns=row["ns"],
        )


def with_hash(row: dict[str, Any], keys: AuditKeys) -> dict[str, Any]:
    # The JSON text is made once: the hash covers it and the outbox stores it as it is.
    row["changes"] = json_text(row["changes"])
    row["metadata"] = json_text(row["metadata"])
    body = entry_body(
        model=row["model"], record_id=row["record_id"], operation=row["operation"],
        user_id=row["user_id"], ts=row["ts"], changes_json=row["changes"],
        metadata_json=row["metadata"], ns=row["ns"],
    )
    row["entry_hash"] = keys.sign(body)
    return row


