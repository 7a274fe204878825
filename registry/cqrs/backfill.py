"""The backfill of a mode switch: one `snapshot` event per record that existed before its
model took events, so that folding the events gives the current rows.

It runs in chunks of `cqrs.backfill_chunk` records, each chunk one transaction that also
moves the resume mark (`last_id`), so a backfill cut short resumes where it stopped (the
projector resumes unfinished ones). A record whose version already has an event (written by
a command that snapshotted it on demand) is skipped by the store's unique version.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..audit import Clock
from ..catalog import ModelEntry, OperationMode
from ..database import Database
from ..ids import new_id
from .events import Event
from .execution import ModelSource
from .store import EventStore
from .tables import backfills
from .tables import events as events_table

__all__ = ["Backfill"]


class Backfill:
    def __init__(
        self, database: Database, store: EventStore, models: ModelSource, clock: Clock,
        chunk: int,
    ) -> None:
        self.database = database
        self.store = store
        self.models = models
        self.clock = clock
        self.chunk = chunk
        dialect = postgresql if database.is_postgresql else sqlite
        self._insert_ignoring_taken = dialect.insert(events_table).on_conflict_do_nothing(
            index_elements=["model", "aggregate_id", "version"]
        )
        self._upsert = dialect.insert(backfills)

    def start(self, conn: Connection, model: str) -> None:
        """Mark a backfill as due from the first record (in the mode switch's transaction)."""
        values = {"last_id": None, "done": False, "events": 0, "updated_at": self.clock()}
        conn.execute(self._upsert.values(model=model, **values).on_conflict_do_update(
            index_elements=["model"], set_=values
        ))

    def run(self, model: str) -> int:
        """Append the snapshots still due for `model`; returns how many were appended."""
        total = 0
        while True:
            appended, finished = self._chunk(model)
            total += appended
            if finished:
                return total

    def resume_all(self) -> int:
        with self.database.read() as conn:
            due = conn.execute(
                sa.select(backfills.c.model).where(backfills.c.done.is_(False))
            ).scalars().all()
        return sum(self.run(model) for model in due)

    def _chunk(self, model: str) -> tuple[int, bool]:
        with self.database.write() as conn:
            mark = conn.execute(
                self.database.for_update(sa.select(backfills).where(backfills.c.model == model))
            ).mappings().first()
            if mark is None or mark["done"]:
                return 0, True
            entry = self.models.resolve(conn, model)
            if entry.operation_mode is OperationMode.CRUD:
                conn.execute(self._finish(model, mark["last_id"], mark["events"]))
                return 0, True
            rows = self._next_rows(conn, entry, mark["last_id"])
            appended = self._append_snapshots(conn, entry, rows)
            last_id = rows[-1]["id"] if rows else mark["last_id"]
            finished = len(rows) < self.chunk
            values = {"last_id": last_id, "events": mark["events"] + appended,
                      "done": finished, "updated_at": self.clock()}
            conn.execute(sa.update(backfills).where(backfills.c.model == model).values(values))
            return appended, finished

    def _finish(self, model: str, last_id: Any, events: int) -> sa.Update:
        return sa.update(backfills).where(backfills.c.model == model).values(
            done=True, last_id=last_id, events=events, updated_at=self.clock()
        )

    def _next_rows(
        self, conn: Connection, entry: ModelEntry, after: str | None
    ) -> list[Any]:
        table = entry.records.table
        query = sa.select(table).order_by(table.c.id).limit(self.chunk)
        if after is not None:
            query = query.where(table.c.id > after)
        return list(conn.execute(query).mappings())

    def _append_snapshots(self, conn: Connection, entry: ModelEntry, rows: list[Any]) -> int:
        if not rows:
            return 0
        self.store.lock_for_append(conn)
        now = self.clock()
        snapshots = [
            Event.model_construct(
                position=None, event_id=new_id(), model=entry.name,
                aggregate_id=row["id"], version=row["version"], type="snapshot",
                data={"state": entry.records.to_record(row)}, metadata=_NO_ONE,
                schema_version=entry.version, timestamp=now, ns="events",
            ).to_row()
            for row in rows
        ]
        return int(conn.execute(self._insert_ignoring_taken, snapshots).rowcount)


_NO_ONE = Event.model_fields["metadata"].default
