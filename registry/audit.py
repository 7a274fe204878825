"""The audit trail: every change is written to an outbox in the transaction that makes it.

Invariant 1: a change and its outbox row commit together or not at all, because `append` takes
the caller's connection. Compaction (a separate, low-priority job) later moves outbox rows into
compressed blocks; reading history reads both as one stream.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from .database import Database
from .tables import audit_outbox

__all__ = ["AUDIT_NS", "AuditEntry", "AuditLogger", "Clock", "utc_now"]

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

    def to_row(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "record_id": self.record_id,
            "operation": self.operation,
            "user_id": self.user_id,
            "ts": self.timestamp,
            "changes": to_jsonable_python(self.changes),
            "metadata": to_jsonable_python(self.metadata),
            "ns": self.ns,
        }

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


_INSERT_OUTBOX = sa.insert(audit_outbox)


class AuditLogger:
    """Writes audit entries to the outbox and reads a record's history back in order."""

    def __init__(
        self, database: Database, *, clock: Clock = utc_now, compression_enabled: bool = True
    ) -> None:
        self.database = database
        self.clock = clock
        self.compression_enabled = compression_enabled

    def append(self, conn: Connection, entries: Iterable[AuditEntry]) -> None:
        """Write entries inside the caller's transaction, so they commit with the change."""
        rows = [entry.to_row() for entry in entries]
        if rows:
            conn.execute(_INSERT_OUTBOX, rows)

    def append_row(
        self,
        conn: Connection,
        *,
        model_name: str,
        record_id: str,
        operation: str,
        user_id: str | None,
        changes: dict[str, dict[str, Any]],
        metadata: dict[str, Any],
    ) -> None:
        """`append` for one entry whose values are already JSON, without building a model
        (this runs on every write)."""
        conn.execute(
            _INSERT_OUTBOX,
            self.entry_values(
                model_name=model_name,
                record_id=record_id,
                operation=operation,
                user_id=user_id,
                changes=changes,
                metadata=metadata,
            ),
        )

    def entry_values(
        self,
        *,
        model_name: str,
        record_id: str,
        operation: str,
        user_id: str | None,
        changes: dict[str, dict[str, Any]],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """The outbox columns of one entry."""
        return {
            "model": model_name,
            "record_id": record_id,
            "operation": operation,
            "user_id": user_id,
            "ts": self.clock(),
            "changes": changes,
            "metadata": metadata,
            "ns": AUDIT_NS,
        }

    def log_operation(
        self,
        model_name: str,
        record_id: str,
        operation: str,
        user_id: str | None,
        changes: dict[str, dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        *,
        connection: Connection | None = None,
    ) -> AuditEntry:
        """Record one operation; in its own transaction unless a connection is given."""
        entry = AuditEntry(
            model_name=model_name,
            record_id=record_id,
            operation=operation,
            user_id=user_id,
            timestamp=self.clock(),
            changes=changes,
            metadata=metadata or {},
        )
        if connection is not None:
            self.append(connection, [entry])
        else:
            with self.database.write() as conn:
                self.append(conn, [entry])
        return entry

    def history(self, model_name: str, record_id: str) -> list[AuditEntry]:
        """Every entry of one record, oldest first."""
        query = (
            sa.select(audit_outbox)
            .where(audit_outbox.c.model == model_name, audit_outbox.c.record_id == record_id)
            .order_by(audit_outbox.c.seq)
        )
        with self.database.read() as conn:
            return [AuditEntry.from_row(row) for row in conn.execute(query).mappings()]
