"""The projector: applies events to projections, exactly once, and rebuilds them.

Each step works on one projection in one transaction: lock its checkpoint row, read the
events after the checkpoint (up to the store's safe head), apply them, write the new
checkpoint, commit. A projector killed anywhere in between leaves the previous checkpoint
and rows, so nothing is applied twice; a second projector finds the row locked and goes on
to other work (PostgreSQL's SKIP LOCKED; SQLite runs one write transaction at a time).

A rebuild replays a projection's events into shadow tables while the live ones keep
answering queries, then, in one transaction holding the checkpoint row and the appenders'
lock, applies what arrived meanwhile and swaps the shadow tables in by renaming.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..audit import Clock
from ..catalog import ModelEntry
from ..database import Database
from .blocks import Blocker, ProjectionBlocks, reason_for
from .events import AppliedEvent, EventBatch
from .projections import GroupedProjection, RecordProjection
from .store import EVENT_LOCK, EventStore
from .tables import checkpoints

__all__ = ["Projection", "Projector"]

logger = logging.getLogger(__name__)


class Projection(Protocol):
    """What the projector needs of a projection."""

    name: str
    model: str
    entry: ModelEntry

    def apply(self, conn: Connection, events: Sequence[AppliedEvent]) -> None: ...

    def apply_last(self, conn: Connection, last: Mapping[str, AppliedEvent]) -> None: ...

    def shadow(self, suffix: str) -> ShadowTables: ...


@dataclass
class ShadowTables:
    """A projection over shadow tables, and how to make, drop and swap them in."""

    projection: Any
    live_names: list[str]
    shadow_names: list[str]
    create: Any
    drop: Any


class DefaultProjection:
    """A model's record table as a projection named `records:<Model>`."""

    def __init__(self, name: str, entry: ModelEntry) -> None:
        self.name = name
        self.model = entry.name
        self.entry = entry
        self.writer = RecordProjection(entry)

    def apply(self, conn: Connection, events: Sequence[AppliedEvent]) -> None:
        self.writer.apply(conn, events)

    def apply_last(self, conn: Connection, last: Mapping[str, AppliedEvent]) -> None:
        self.writer.apply_last(conn, last)

    def shadow(self, suffix: str) -> ShadowTables:
        live = self.entry.records.table
        table = sa.Table(f"{live.name}{suffix}", sa.MetaData(),
                         *[column._copy() for column in live.c])

        def create(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                # Keep whatever indexes the live table has gained (filters, cursors).
                conn.exec_driver_sql(
                    f'CREATE TABLE "{table.name}" (LIKE "{live.name}" INCLUDING ALL)'
                )
            else:
                table.create(conn)

        return ShadowTables(
            projection=RecordProjection(self.entry, table),
            live_names=[live.name], shadow_names=[table.name],
            create=create, drop=lambda conn: table.drop(conn, checkfirst=True),
        )


class DeclaredProjection:
    def __init__(self, grouped: GroupedProjection) -> None:
        self.grouped = grouped
        self.name = grouped.name
        self.model = grouped.entry.name
        self.entry = grouped.entry

    def apply(self, conn: Connection, events: Sequence[AppliedEvent]) -> None:
        self.grouped.apply(conn, events)

    def apply_last(self, conn: Connection, last: Mapping[str, AppliedEvent]) -> None:
        self.grouped.apply_last(conn, last)

    def shadow(self, suffix: str) -> ShadowTables:
        twin = GroupedProjection(self.grouped.definition, self.grouped.entry, suffix=suffix)
        return ShadowTables(
            projection=twin,
            live_names=[t.name for t in self.grouped.tables],
            shadow_names=[t.name for t in twin.tables],
            create=twin.create, drop=twin.drop,
        )


class Projector:
    def __init__(
        self, database: Database, store: EventStore, clock: Clock, batch_size: int
    ) -> None:
        self.database = database
        self.store = store
        self.clock = clock
        self.batch_size = batch_size
        self.blocks = ProjectionBlocks()
        dialect = postgresql if database.is_postgresql else sqlite
        self._insert_checkpoint = dialect.insert(checkpoints).on_conflict_do_nothing()

    # -- checkpoints -------------------------------------------------------------------

    def ensure_checkpoint(self, conn: Connection, name: str, position: int = 0) -> None:
        conn.execute(self._insert_checkpoint.values(
            name=name, position=position, updated_at=self.clock()
        ))

    def checkpoint(self, conn: Connection, name: str) -> int | None:
        query = sa.select(checkpoints.c.position).where(checkpoints.c.name == name)
        value = conn.execute(query).scalar_one_or_none()
        return int(value) if value is not None else None

    def _lock_checkpoint(self, conn: Connection, name: str, *, wait: bool) -> int | None:
        """The checkpoint, locked until commit; None if another projector holds it."""
        self.ensure_checkpoint(conn, name)
        query = sa.select(checkpoints.c.position).where(checkpoints.c.name == name)
        if self.database.is_postgresql:
            query = query.with_for_update(skip_locked=not wait)
        value = conn.execute(query).scalar_one_or_none()
        return int(value) if value is not None else None

    def reset_checkpoint(self, conn: Connection, name: str) -> None:
        """Start a projection (new, or with emptied tables) from the first event."""
        self.ensure_checkpoint(conn, name)
        self.set_checkpoint(conn, name, 0)
        self.blocks.clear(conn, name)

    def set_checkpoint(self, conn: Connection, name: str, position: int) -> None:
        """Move a projection's checkpoint in the caller's transaction, the one that writes
        the projection's rows up to `position`."""
        conn.execute(
            sa.update(checkpoints).where(checkpoints.c.name == name)
            .values(position=position, updated_at=self.clock())
        )

    # -- catching up -------------------------------------------------------------------

    def catch_up(self, projection: Projection, head: int | None = None) -> int:
        """Apply every event up to `head` (the store's safe head when None); returns how
        many events this call applied (0 when another projector holds the projection)."""
        return self.catch_up_together([projection], head)

    def catch_up_together(
        self, projections: Sequence[Projection], head: int | None = None
    ) -> int:
        """As `catch_up`, for projections of one model: each batch of its events is read and
        folded once for all of them, and applied to each in the same transaction."""
        head = self.store.head() if head is None else head
        ordered = sorted(projections, key=lambda projection: projection.name)
        applied = 0
        while True:
            step = self.step(ordered, head)
            if step is None:
                return applied
            applied += step

    def step(self, projections: Sequence[Projection], head: int) -> int | None:
        """One batch in one transaction for the projections (of one model) this projector
        can lock; returns the events applied, summed over them, or None when no checkpoint
        moved: none is behind `head`, another projector holds every one that is, or those
        left are blocked by an event they cannot apply (see `_apply_or_block`)."""
        log: list[Callable[[], None]] = []
        with self.database.write() as conn:
            behind: list[tuple[Projection, int]] = []
            for projection in projections:
                position = self._lock_checkpoint(conn, projection.name, wait=False)
                if position is not None and position < head:
                    behind.append((projection, position))
            if not behind:
                return None
            start = min(position for _, position in behind)
            batch = self.store.read_batch(conn, start, head, self.batch_size, behind[0][0].model)
            full = len(batch.positions) == self.batch_size
            last = batch.positions[-1] if full else head
            was_blocked = self.blocks.blocked(conn, [p.name for p, _ in behind])
            applied, moved = 0, False
            for projection, position in behind:
                reached, blocker = self._apply_or_block(conn, projection, batch, position, last)
                applied += _events_between(batch, position, reached)
                moved = moved or reached > position
                self.set_checkpoint(conn, projection.name, reached)
                log.extend(self._note_block(conn, projection.name,
                                            was_blocked.get(projection.name), blocker))
        for line in log:
            line()
        return applied if moved else None

    def _apply_or_block(
        self, conn: Connection, projection: Projection, batch: EventBatch, position: int,
        last: int,
    ) -> tuple[int, Blocker | None]:
        """Apply the batch's part after `position` (the events up to `last`) to one
        projection, inside a savepoint so that a failure undoes this projection's part only.
        Returns the new checkpoint, and the `Blocker` when an event cannot be applied.

        When the batch as a whole fails, the projection's events are applied again one by
        one, in order, each state as its event left it (the order in which commands kept
        unique values unique): the first event that still fails is the blocker, and the
        checkpoint stays just before it. So the projection is always the fold of its events
        up to its checkpoint; nothing past a failure is skipped."""
        last_events, _count = batch.after(position)
        failed = _failure(conn, projection, last_events)
        if failed is None:
            return max(position, last), None
        after = position
        while True:
            single = self.store.read_batch(conn, after, last, 1, projection.model)
            if not single.positions:
                return max(position, last), None  # together they failed, in order they apply
            event = next(iter(single.last.values()))
            failed = _failure(conn, projection, {event.aggregate_id: event})
            if failed is not None:
                reason = reason_for(failed, projection.entry)
                return event.position - 1, self.blocks.blocker(conn, event, reason)
            after = event.position

    def _note_block(
        self, conn: Connection, name: str, before: Blocker | None, now: Blocker | None
    ) -> list[Callable[[], None]]:
        """Keep the projection's block row current; returns the log line its change of
        state deserves (none while it stays as it was), to write once committed."""
        if now is None:
            if before is None:
                return []
            self.blocks.clear(conn, name)
            return [lambda: logger.info(
                "Projection %r applied position %d and is no longer blocked.",
                name, before.position)]
        if before == now:
            return []
        self.blocks.record(conn, name, now, self.clock())
        return [lambda: logger.warning("%s", now.describe(name))]

    # -- rebuilding --------------------------------------------------------------------

    def rebuild(self, projection: Projection) -> dict[str, int]:
        """Fill shadow tables from the folded events of the projection's model and swap
        them in; returns `{"events", "rows"}` (events covered, rows in the new main table).

        The shadow tables are written from each aggregate's last event only (the database
        folds the history) in set-based batches; what arrives meanwhile is applied as the
        projector would, in the transaction that swaps the tables in."""
        shadow = projection.shadow(f"_rb{uuid.uuid4().hex[:6]}")
        with self.database.write() as conn:
            shadow.create(conn)
        try:
            head = self.store.head()
            self._fill(shadow.projection, projection.model, head)
            with self.database.write() as conn, self._appenders_held(conn):
                self._lock_checkpoint(conn, projection.name, wait=True)
                covered = self.store.count(conn, projection.model, head)
                now = self.store.last_position(conn)
                covered += self._replay_in(conn, shadow.projection, projection.model, head, now)
                self._swap(conn, shadow)
                self.set_checkpoint(conn, projection.name, now)
                self.blocks.clear(conn, projection.name)  # the tables are the fold again
                rows = conn.execute(
                    sa.select(sa.func.count()).select_from(sa.table(shadow.live_names[0]))
                ).scalar_one()
        except BaseException:
            with self.database.write() as conn:
                shadow.drop(conn)
            raise
        return {"events": covered, "rows": int(rows)}

    def _fill(self, target: Any, model: str, head: int) -> None:
        """Write every aggregate's state as of `head` into the empty shadow tables, a batch
        of aggregates per transaction."""
        after = ""
        while True:
            with self.database.write() as conn:
                found = self.store.last_events(conn, model, head, after, self.batch_size)
                if not found:
                    return
                target.apply_last(conn, {
                    event.aggregate_id: event for event in found if not event.is_deletion
                })
            after = found[-1].aggregate_id

    def _replay_in(
        self, conn: Connection, target: Any, model: str, after: int, head: int
    ) -> int:
        """Apply the events after `after` up to `head` in `conn`; returns how many."""
        total = 0
        while True:
            batch = self.store.read_batch(conn, after, head, self.batch_size, model)
            if not batch.positions:
                return total
            target.apply_last(conn, batch.last)
            total += len(batch.positions)
            after = batch.positions[-1]

    @contextmanager
    def _appenders_held(self, conn: Connection) -> Iterator[None]:
        """Hold off every appender (they take the lock shared) until this transaction ends:
        a hybrid write must not land in a table being swapped out."""
        if self.database.is_postgresql:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({EVENT_LOCK})")
        yield

    def _swap(self, conn: Connection, shadow: ShadowTables) -> None:
        for live, new in zip(shadow.live_names, shadow.shadow_names, strict=True):
            retired = f"{live}_old{uuid.uuid4().hex[:6]}"[:63]
            conn.exec_driver_sql(f'ALTER TABLE "{live}" RENAME TO "{retired}"')
            conn.exec_driver_sql(f'ALTER TABLE "{new}" RENAME TO "{live}"')
            conn.exec_driver_sql(f'DROP TABLE "{retired}"')


def _failure(
    conn: Connection, projection: Projection, last: Mapping[str, AppliedEvent]
) -> Exception | None:
    """What applying `last` to the projection raised, inside a savepoint that was rolled
    back; None if it worked. A lost connection is raised: it is no projection's doing."""
    try:
        with conn.begin_nested():
            projection.apply_last(conn, last)
    except Exception as exc:
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            raise
        return exc
    return None


def _events_between(batch: EventBatch, after: int, up_to: int) -> int:
    """How many of the batch's events have `after < position <= up_to`."""
    positions = batch.positions
    return bisect.bisect_right(positions, up_to) - bisect.bisect_right(positions, after)
