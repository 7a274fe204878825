"""Unique fields (`x-unique`) under commands: a command whose new state repeats a value that
another record holds is refused with `DuplicateValue` naming the field, as a CRUD write is.

A hybrid model's table is written in the command's transaction, so its unique index itself
refuses, and `duplicate_of` turns the database's error into `DuplicateValue`. A cqrs model's
table follows the events later: if the command did not check, the projector would meet the
violation instead, long after the command succeeded. So a command that sets a unique value
takes a transaction lock on that value (two commands claiming it run one after the other),
then looks for another holder among the table's rows and the events the table does not
show yet (those after its projection's checkpoint, which override the rows they touch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ModelEntry
from ..database import Database
from ..errors import DuplicateValue
from ..query.indexes import duplicate_error, duplicate_value
from .events import Event
from .projections import StateColumns, default_projection_name
from .store import EventStore
from .tables import checkpoints

__all__ = ["UniqueValues", "duplicate_of"]

#: The first key of the two-part advisory locks on claimed values (PostgreSQL).
VALUE_LOCK = 727_303
#: Most events past the checkpoint a check reads (a projector this far behind is stuck).
_PENDING_LIMIT = 1_000_000


def duplicate_of(exc: sa.exc.IntegrityError, entry: ModelEntry) -> DuplicateValue | None:
    """The `DuplicateValue` a unique index's violation on the model's table means."""
    return duplicate_value(exc, entry.name, entry.records.table.name, entry.indexes)


class UniqueValues:
    def __init__(self, database: Database, store: EventStore) -> None:
        self.database = database
        self.store = store
        self._unique: dict[tuple[str, int], list[tuple[str, ...]]] = {}

    def unique_fields(self, entry: ModelEntry) -> list[tuple[str, ...]]:
        """The model's unique field lists (remembered per model version: commands ask each
        time, and most models have none)."""
        key = (entry.name, entry.version)
        found = self._unique.get(key)
        if found is None:
            found = self._unique[key] = [spec.fields for spec in entry.indexes if spec.unique]
        return found

    def check(
        self, conn: Connection, entry: ModelEntry, before: Mapping[str, Any] | None,
        events: Sequence[Event],
    ) -> None:
        """Raise `DuplicateValue` when an event's state claims a unique value that another
        aggregate of the model holds; call before appending `events`."""
        unique = self.unique_fields(entry)
        for event in events if unique else ():
            state = None if event.is_deletion else event.state
            for fields in unique:
                claimed = [None if state is None else state.get(name) for name in fields]
                unchanged = before is not None and claimed == [before.get(n) for n in fields]
                if None not in claimed and not unchanged:
                    self._check_claim(conn, entry, event, fields, claimed)
            before = state

    def _check_claim(
        self, conn: Connection, entry: ModelEntry, event: Event, fields: tuple[str, ...],
        claimed: list[Any],
    ) -> None:
        if self.database.is_postgresql:
            key = json.dumps([entry.name, fields, claimed], default=str)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))"),
                         {"lock": VALUE_LOCK, "key": key})
        checkpoint = conn.execute(
            sa.select(checkpoints.c.position)
            .where(checkpoints.c.name == default_projection_name(entry.name))
        ).scalar() or 0
        pending = self.store.read_batch(conn, checkpoint, 2**62, _PENDING_LIMIT, entry.name).last
        for aggregate_id, later in pending.items():
            state = None if later.is_deletion else later.state
            if aggregate_id != event.aggregate_id and state is not None \
                    and [state.get(name) for name in fields] == claimed:
                raise duplicate_error(entry.name, fields)
        table = entry.records.table
        values = StateColumns(entry, fields).of(event)
        holders = conn.execute(
            sa.select(table.c.id).where(
                table.c.id != event.aggregate_id,
                *[table.c[name] == values[name] for name in fields],
            )
        ).scalars()
        if any(holder not in pending for holder in holders):
            raise duplicate_error(entry.name, fields)
