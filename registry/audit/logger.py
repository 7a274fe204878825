"""`AuditLogger`, the front of the audit trail: writing entries to the outbox, history,
compaction, verification, retention and statistics.

Entries are written to an outbox in the transaction that makes the change (`outbox.py`);
compaction (a separate, low-priority job, `trail.py`) later moves them into compressed,
hash-chained blocks (`blocks.py`); reading history reads both as one stream.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import batch_audit
from ..database import Database
from ..driver_insert import DriverInsert
from ..errors import AuditIntegrityError
from ..settings import AuditSettings
from ..tables import as_utc, audit_outbox
from .codecs import codec_for
from .keys import AuditKeys, default_key_file, load_audit_keys
from .outbox import AUDIT_NS, AuditEntry, Clock, utc_now, with_hash
from .trail import AuditTrail, CompactionPolicy, StoredRecords, TrailQuery

__all__ = ["AuditLogger"]

_INSERT_OUTBOX = sa.insert(audit_outbox)
#: The one-entry insert every write runs: on SQLite straight to the driver, which saves a
#: create most of what SQLAlchemy's execution path costs (`registry/driver_insert.py`).
_INSERT_ONE_ENTRY = DriverInsert(audit_outbox)


class AuditLogger:
    """Writes audit entries to the outbox and reads a record's history back in order."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        compression_enabled: bool = True,
        settings: AuditSettings | None = None,
        retention_days: float = 90,
        keys: AuditKeys | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        #: False stores new blocks uncompressed (codec "none"), still hash-chained.
        self.compression_enabled = compression_enabled
        self.settings = settings or AuditSettings()
        #: Blocks whose entries are all older than this many days are purged.
        self.retention_days = retention_days
        #: The keys entry and block hashes are made and checked with (`keys.py`).
        self.keys = keys or load_audit_keys(
            self.settings, default_key_file(str(database.url))
        )
        self.trail = AuditTrail(database, clock, self.keys)

    def append(self, conn: Connection, entries: Iterable[AuditEntry]) -> None:
        """Write entries inside the caller's transaction, so they commit with the change."""
        rows = [entry.to_row(self.keys) for entry in entries]
        if rows:
            conn.execute(_INSERT_OUTBOX, rows)

    def append_row(
        self,
        conn: Connection,
        *,
        at: datetime.datetime | None = None,
        model_name: str,
        record_id: str,
        operation: str,
        user_id: str | None,
        changes: dict[str, dict[str, Any]],
        metadata: dict[str, Any],
    ) -> None:
        """`append` for one entry whose values are already JSON, without building a model
        (this runs on every write)."""
        _INSERT_ONE_ENTRY(
            conn,
            self.entry_values(
                at=at,
                model_name=model_name,
                record_id=record_id,
                operation=operation,
                user_id=user_id,
                changes=changes,
                metadata=metadata,
            ),
        )

    def append_rows(self, conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
        """`append_row` for many entries (each the keywords of `entry_values`) in one
        statement: a bulk update's entries without a round trip each."""
        if entries:
            conn.execute(_INSERT_OUTBOX, [self.entry_values(**entry) for entry in entries])

    def entry_values(
        self,
        *,
        at: datetime.datetime | None = None,
        model_name: str,
        record_id: str,
        operation: str,
        user_id: str | None,
        changes: dict[str, dict[str, Any]],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """The outbox columns of one entry, its hash included."""
        return with_hash(
            {
                "model": model_name,
                "record_id": record_id,
                "operation": operation,
                "user_id": user_id,
                "ts": as_utc(at) if at is not None else self.clock(),
                "changes": changes,
                "metadata": metadata,
                "ns": AUDIT_NS,
            },
            self.keys,
        )

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

    def history(
        self,
        model_name: str,
        record_id: str | None = None,
        *,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        actor: str | None = None,
    ) -> list[AuditEntry]:
        """A model's entries in trail order (a record's: oldest first), unmasked.

        `since` is inclusive and `until` exclusive; `actor` keeps the entries one user made.
        Blocks and pending entries are read as one stream.
        """
        query = TrailQuery(
            model_name, record_id, _utc_or_none(since), _utc_or_none(until), actor
        )
        found = batch_audit.with_batches(  # records written in bulk: see batch_audit
            self.database, lambda other: self.trail.read(replace(query, record_id=other)),
            record_id, self.trail.read(query),
        )
        return [AuditEntry.from_row(item) for item in found]

    # -- the audit worker's operations ---------------------------------------------------

    def compaction_policy(self) -> CompactionPolicy:
        name = self.settings.codec if self.compression_enabled else "none"
        level = self.settings.compression_level if self.compression_enabled else None
        return CompactionPolicy(
            batch_size=self.settings.batch_size,
            max_wait_seconds=self.settings.max_wait_seconds,
            max_blocks=self.settings.max_blocks_per_run,
            codec=codec_for(name, level),
        )

    def compact(self, *, force: bool = False) -> dict[str, int]:
        """Seal settled pending entries into blocks: `{"blocks", "entries"}` written.

        Without `force`, a part-filled batch waits for `max_wait_seconds`. Raises
        `AuditIntegrityError` when a pending entry was changed after it was written.
        """
        return self.trail.compact(self.compaction_policy(), force=force)

    def purge(self, retention_days: float | None = None) -> dict[str, Any]:
        """Drop blocks whose entries are all older than the retention (days)."""
        days = self.retention_days if retention_days is None else retention_days
        return self.trail.purge(datetime.timedelta(days=days))

    def verify(self, stored_records: StoredRecords | None = None) -> dict[str, Any]:
        """`{"ok": True, ...}` or `{"ok": False, "block_id" | "pending_seq" | "seq" |
        "record", "reason"}`; see `AuditTrail.verify`."""
        return self.trail.verify(stored_records)

    def require_intact(self, stored_records: StoredRecords | None = None) -> dict[str, Any]:
        """`verify`, raising `AuditIntegrityError` with its reason when the trail is broken."""
        report = self.verify(stored_records)
        if not report["ok"]:
            details = {key: value for key, value in report.items() if key != "reason"}
            raise AuditIntegrityError(report["reason"], **details)
        return report

    def stats(self, model_name: str | None = None) -> dict[str, int]:
        """`{"entries", "blocks", "pending", "raw_bytes", "stored_bytes"}`."""
        return self.trail.stats(model_name)

    def pending_at_least(self, count: int) -> bool:
        """Whether at least `count` entries are pending; reads at most `count` index rows."""
        bounded = sa.select(audit_outbox.c.seq).limit(count).subquery()
        with self.database.read() as conn:
            found = conn.execute(sa.select(sa.func.count()).select_from(bounded)).scalar_one()
        return int(found) >= count


def _utc_or_none(value: datetime.datetime | None) -> datetime.datetime | None:
    return as_utc(value) if value is not None else None

