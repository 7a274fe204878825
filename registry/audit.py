"""The audit trail: every change is written to an outbox in the transaction that makes it.

Invariant 1: a change and its outbox row commit together or not at all, because `append` takes
the caller's connection. Each outbox row carries the sha256 of its canonical form, so a pending
entry changed later is detected. Compaction (a separate, low-priority job, `audit_trail.py`)
later moves outbox rows into compressed, hash-chained blocks; reading history reads both as one
stream. `AuditLogger` is the front of all of it: writing, history, compaction, verification,
retention and statistics.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from . import batch_audit
from .audit_blocks import entry_body, entry_hash, json_text
from .audit_trail import AuditTrail, CompactionPolicy, CurrentVersions, TrailQuery
from .codecs import codec_for
from .database import Database
from .errors import AuditIntegrityError, RecordNotFound
from .settings import AuditSettings
from .tables import as_utc, audit_outbox

__all__ = ["AUDIT_NS", "AuditEntry", "AuditLogger", "Clock", "record_as_of", "utc_now"]

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
        return _with_hash(row)

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
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        compression_enabled: bool = True,
        settings: AuditSettings | None = None,
        retention_days: float = 90,
    ) -> None:
        self.database = database
        self.clock = clock
        #: False stores new blocks uncompressed (codec "none"), still hash-chained.
        self.compression_enabled = compression_enabled
        self.settings = settings or AuditSettings()
        #: Blocks whose entries are all older than this many days are purged.
        self.retention_days = retention_days
        self.trail = AuditTrail(database, clock)

    def append(self, conn: Connection, entries: Iterable[AuditEntry]) -> None:
        """Write entries inside the caller's transaction, so they commit with the change."""
        rows = [entry.to_row() for entry in entries]
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
        conn.execute(
            _INSERT_OUTBOX,
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
        return _with_hash(
            {
                "model": model_name,
                "record_id": record_id,
                "operation": operation,
                "user_id": user_id,
                "ts": as_utc(at) if at is not None else self.clock(),
                "changes": changes,
                "metadata": metadata,
                "ns": AUDIT_NS,
            }
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

    def verify(self, current_versions: CurrentVersions | None = None) -> dict[str, Any]:
        """`{"ok": True, ...}` or `{"ok": False, "block_id" | "pending_seq" | "seq" |
        "record", "reason"}`; see `AuditTrail.verify`."""
        return self.trail.verify(current_versions)

    def require_intact(self, current_versions: CurrentVersions | None = None) -> dict[str, Any]:
        """`verify`, raising `AuditIntegrityError` with its reason when the trail is broken."""
        report = self.verify(current_versions)
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


def record_as_of(
    entries: Iterable[AuditEntry], at: datetime.datetime
) -> dict[str, Any] | None:
    """A record as its history says it was at `at`, shaped as a read returns it; None before
    its creation or after its deletion. `entries` are the record's, oldest first."""
    fields: dict[str, Any] | None = None
    system: dict[str, Any] = {}
    moment = as_utc(at)
    for entry in entries:
        if as_utc(entry.timestamp) > moment:
            break
        if entry.operation == "delete":
            fields = None
            continue
        if entry.operation == "migrate":  # a schema change: values only, not a new version
            if fields is not None:
                _apply_migration(fields, entry)
            continue
        if fields is None and entry.operation != "create":
            # The record's create went with an audit block that retention purged.
            raise RecordNotFound(
                f"Record {entry.record_id!r} of {entry.model_name!r} cannot be rebuilt at that "
                "time: the start of its history was purged by retention.",
                model=entry.model_name,
                record_id=entry.record_id,
            )
        if entry.operation == "create" or fields is None:
            fields, system = {}, _created_stamp(entry)
        fields.update({name: change.get("new") for name, change in entry.changes.items()})
        system = {**system, **_updated_stamp(entry, system)}
    if fields is None:
        return None
    return {"id": system["id"], "version": system["version"], **fields,
            **{key: system[key] for key in _STAMPS}}


_STAMPS = ("created_at", "updated_at", "created_by", "updated_by")


def _apply_migration(fields: dict[str, Any], entry: AuditEntry) -> None:
    removed = set(entry.metadata.get("removed", ()))
    for name, change in entry.changes.items():
        if name in removed:
            fields.pop(name, None)
        else:
            fields[name] = change.get("new")


def _stamp(entry: AuditEntry) -> Any:
    # The entry's time is the row's created_at / updated_at; spelled as a read spells it.
    return to_jsonable_python(as_utc(entry.timestamp))


def _created_stamp(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.record_id, "created_at": _stamp(entry), "created_by": entry.user_id}


def _updated_stamp(entry: AuditEntry, system: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": entry.metadata.get("version", system.get("version")),
        "updated_at": _stamp(entry),
        "updated_by": entry.user_id,
    }


def _with_hash(row: dict[str, Any]) -> dict[str, Any]:
    # The JSON text is made once: the hash covers it and the outbox stores it as it is.
    row["changes"] = json_text(row["changes"])
    row["metadata"] = json_text(row["metadata"])
    body = entry_body(
        model=row["model"], record_id=row["record_id"], operation=row["operation"],
        user_id=row["user_id"], ts=row["ts"], changes_json=row["changes"],
        metadata_json=row["metadata"], ns=row["ns"],
    )
    row["entry_hash"] = entry_hash(body)
    return row


def _utc_or_none(value: datetime.datetime | None) -> datetime.datetime | None:
    return as_utc(value) if value is not None else None
