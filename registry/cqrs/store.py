"""The event store: an append-only table with a global position and one version sequence per
aggregate.

Appending happens inside the caller's transaction, so a command's events commit with its
audit entry and idempotency record or not at all (Invariant 1). Two writers at the same
aggregate version cannot both commit: the second finds (model, aggregate, version) taken and
gets `VersionConflict`.

Readers follow the global position, and must never skip an event that commits after they
have read past its position. On PostgreSQL positions come from a sequence when a row is
inserted, and transactions commit in any order, so position 41 can become visible after 42
has been read. The store closes that window with one advisory lock (`EVENT_LOCK`): every
appender takes it in *shared* mode just before taking its positions and holds it until it
commits; a reader that wants the safe head takes it *exclusively* for a moment, which waits
for the appenders in flight to finish, reads the highest position, and lets go. Every
position at or below that head belongs to a transaction that has ended, and every later
appender draws a higher one, so reading up to the head never skips anything. Appenders do not
exclude each other (shared locks are compatible), so concurrent writers keep their parallel
commits; only a reader's brief moment makes new appenders wait. DESIGN.md says why this and
not the alternatives. SQLite has one writer at a time and commits in position order, so its
head is simply the highest position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..database import Database
from ..errors import VersionConflict
from ..tables import audit_outbox
from .events import Event, EventBatch, StoredEvent
from .pg_statements import EVENT_LOCK, append_statement
from .tables import events as events_table

__all__ = ["EVENT_LOCK", "EventStore"]

#: What `StoredEvent` is made of: no metadata. The whole `data` is read as its text
#: (extracting the state in the query makes PostgreSQL parse each event's JSON, at several
#: times the cost of decoding it here) and decoded by `_decode`.
_LIGHT_COLUMNS = (
    events_table.c.position, events_table.c.aggregate_id, events_table.c.version,
    events_table.c.type, sa.cast(events_table.c.data, sa.Text), events_table.c.ts,
    events_table.c.schema_version,
)
#: The stored text is JSON the store wrote: decode it without `json.loads`' checks of the
#: input's encoding and trailing whitespace, a third of its cost for small documents.
_decode = json.JSONDecoder().raw_decode


class EventStore:
    """Appends events and reads them back by position or by aggregate."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._insert = self._build_insert()
        # One event in one round trip on PostgreSQL (see pg_statements).
        self._locked_insert = append_statement() if database.is_postgresql else None

    def _build_insert(self) -> Any:
        dialect = postgresql if self.database.is_postgresql else sqlite
        return (
            dialect.insert(events_table)
            .on_conflict_do_nothing(index_elements=["model", "aggregate_id", "version"])
            .returning(events_table.c.position, sort_by_parameter_order=True)
        )

    # -- writing ------------------------------------------------------------------------

    def append(
        self,
        conn: Connection,
        events: Sequence[Event],
        audit_rows: Sequence[Mapping[str, Any] | None] = (),
    ) -> list[Event]:
        """Append `events` in the caller's transaction, with the audit outbox rows that go
        with them (`audit_rows[i]` for `events[i]`, None for none); returns the events with
        their positions.

        Raises `VersionConflict` (and the caller's transaction must roll back) when another
        writer has taken one of their aggregate versions."""
        if not events:
            return []
        rows = [event.to_row() for event in events]
        audit = [row for row in audit_rows if row is not None]
        if self._locked_insert is not None and len(rows) == 1 and len(audit) == 1:
            params = {**rows[0], **{f"a_{name}": value for name, value in audit[0].items()}}
            positions = [row.position for row in conn.execute(self._locked_insert, params)]
            audit = []
        else:
            self.lock_for_append(conn)
            positions = [row.position for row in conn.execute(self._insert, rows)]
        if len(positions) != len(events):
            raise self._conflict(conn, events)
        if audit:
            conn.execute(sa.insert(audit_outbox), audit)
        return [
            event.model_copy(update={"position": position})
            for event, position in zip(events, positions, strict=True)
        ]

    def lock_for_append(self, conn: Connection) -> None:
        """Take the appenders' shared lock until the transaction ends (taking it again is
        harmless); a transaction that must hold off position readers and table swaps from
        its first write takes it early."""
        if self.database.is_postgresql:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({EVENT_LOCK})")

    def _conflict(self, conn: Connection, events: Sequence[Event]) -> VersionConflict:
        first = events[0]
        actual = self.current_version(conn, first.model, first.aggregate_id)
        return VersionConflict(
            f"Aggregate {first.aggregate_id!r} of {first.model!r} is at version {actual}, "
            f"so version {first.version} is already taken.",
            model=first.model,
            record_id=first.aggregate_id,
            expected_version=first.version - 1,
            actual_version=actual,
        )

    # -- reading ------------------------------------------------------------------------

    def last_event(self, conn: Connection, model: str, aggregate_id: str) -> Event | None:
        """The aggregate's newest event (it carries the aggregate's whole state)."""
        query = (
            sa.select(events_table)
            .where(events_table.c.model == model, events_table.c.aggregate_id == aggregate_id)
            .order_by(events_table.c.version.desc())
            .limit(1)
        )
        row = conn.execute(query).mappings().first()
        return Event.from_row(row) if row is not None else None

    def current_version(self, conn: Connection, model: str, aggregate_id: str) -> int:
        last = self.last_event(conn, model, aggregate_id)
        return last.version if last is not None else 0

    def live_states(self, conn: Connection, model: str) -> dict[str, dict[str, Any]]:
        """Each aggregate of `model` that is not deleted, as its last event leaves it."""
        last = (
            sa.select(events_table.c.aggregate_id, sa.func.max(events_table.c.version).label("v"))
            .where(events_table.c.model == model)
            .group_by(events_table.c.aggregate_id)
            .subquery()
        )
        query = sa.select(events_table.c.aggregate_id, events_table.c.version,
                          events_table.c.type, events_table.c.data).join(
            last, sa.and_(events_table.c.aggregate_id == last.c.aggregate_id,
                          events_table.c.version == last.c.v),
        ).where(events_table.c.model == model)
        return {
            row.aggregate_id: row.data["state"]
            for row in conn.execute(query)
            if row.type != "deleted" and "state" in (row.data or {})
        }

    def stream(self, conn: Connection, model: str, aggregate_id: str) -> list[Event]:
        """Every event of one aggregate, oldest first."""
        query = (
            sa.select(events_table)
            .where(events_table.c.model == model, events_table.c.aggregate_id == aggregate_id)
            .order_by(events_table.c.version)
        )
        return [Event.from_row(row) for row in conn.execute(query).mappings()]

    def head(self) -> int:
        """The highest position a reader may follow up to without ever skipping an event that
        commits later (see the module docstring); 0 for an empty store."""
        if not self.database.is_postgresql:
            with self.database.read() as conn:
                return self._max_position(conn)
        with self.database.single_statement() as conn, self._appenders_drained(conn):
            # Autocommit: this statement's snapshot starts after the lock was granted.
            return self._max_position(conn)

    @contextmanager
    def _appenders_drained(self, conn: Connection) -> Iterator[None]:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({EVENT_LOCK})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({EVENT_LOCK})")

    def _max_position(self, conn: Connection) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(events_table.c.position), 0))
        return int(conn.execute(query).scalar_one())

    def last_position(self, conn: Connection) -> int:
        """The highest position visible to `conn` (not safe to follow; see `head`)."""
        return self._max_position(conn)

    def read(
        self,
        conn: Connection,
        after: int,
        up_to: int,
        limit: int,
        models: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events with `after < position <= up_to`, in position order, at most `limit`;
        `up_to` should come from `head()`."""
        query = sa.select(events_table).where(
            events_table.c.position > after, events_table.c.position <= up_to
        )
        if models is not None:
            query = query.where(events_table.c.model.in_(list(models)))
        query = query.order_by(events_table.c.position).limit(limit)
        return [Event.from_row(row) for row in conn.execute(query).mappings().all()]

    def read_batch(
        self, conn: Connection, after: int, up_to: int, limit: int, model: str
    ) -> EventBatch:
        """The events of `model` with `after < position <= up_to`, at most `limit`, as a
        projection applies them: each aggregate's last event of the batch (every event but
        a delete carries the whole state, so the earlier ones change nothing). Only those
        are decoded."""
        query = (
            sa.select(*_LIGHT_COLUMNS)
            .where(events_table.c.model == model, events_table.c.position > after,
                   events_table.c.position <= up_to)
            .order_by(events_table.c.position)
            .limit(limit)
        )
        rows = conn.execute(query).all()
        last_row = {row[1]: row for row in rows}
        return EventBatch(
            positions=[row[0] for row in rows],
            last={aggregate_id: _light_event(row) for aggregate_id, row in last_row.items()},
        )

    def last_events(
        self, conn: Connection, model: str, up_to: int, after_aggregate: str, limit: int
    ) -> list[StoredEvent]:
        """Each aggregate's last event at or below position `up_to`, for the aggregates
        after `after_aggregate` in id order, at most `limit`: the folded history a rebuild
        writes (the database folds, using the (model, aggregate, version) index)."""
        columns = events_table.c
        if self.database.is_postgresql:
            query = (
                sa.select(*_LIGHT_COLUMNS)
                .where(columns.model == model, columns.aggregate_id > after_aggregate,
                       columns.position <= up_to)
                .ext(postgresql.distinct_on(columns.aggregate_id))
                .order_by(columns.aggregate_id, columns.version.desc())
                .limit(limit)
            )
        else:
            last = (
                sa.select(columns.aggregate_id, sa.func.max(columns.version).label("last"))
                .where(columns.model == model, columns.aggregate_id > after_aggregate,
                       columns.position <= up_to)
                .group_by(columns.aggregate_id)
                .order_by(columns.aggregate_id)
                .limit(limit)
                .subquery()
            )
            query = (
                sa.select(*_LIGHT_COLUMNS)
                .join(last, sa.and_(columns.aggregate_id == last.c.aggregate_id,
                                    columns.version == last.c.last))
                .where(columns.model == model)
                .order_by(columns.aggregate_id)
            )
        return [_light_event(row) for row in conn.execute(query).all()]

    def count(self, conn: Connection, model: str, up_to: int) -> int:
        """How many events of `model` lie at or below position `up_to`."""
        query = sa.select(sa.func.count()).select_from(events_table).where(
            events_table.c.model == model, events_table.c.position <= up_to
        )
        return int(conn.execute(query).scalar_one())

    def read_after(
        self, after: int, limit: int, models: Sequence[str] | None = None
    ) -> tuple[list[Event], int]:
        """Up to `limit` events after `after` that no later commit can precede, and the head
        they were read against."""
        head = self.head()
        with self.database.read() as conn:
            return self.read(conn, after, head, limit, models), head


def _light_event(row: Any) -> StoredEvent:
    position, aggregate_id, version, type_, text, ts, schema_version = row
    data = _decode(text)[0]
    return StoredEvent(position, aggregate_id, version, type_, data.get("state"),
                       data.get("deleted"), ts, schema_version)
