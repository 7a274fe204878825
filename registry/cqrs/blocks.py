"""Projections blocked by an event they cannot apply: where they stopped and why.

A projection that meets an event it cannot write (a row written behind the commands' back
holds a unique value the event claims, a projection table dropped by hand, any database
error on that projection alone) keeps its checkpoint just before that event and is
recorded here, with the event and a one-line reason, until the event applies: each
projector step tries it again, so removing the cause is enough, and a rebuild also clears
it. Every other projection, of the same model or another, goes on (`projector.py`).

The record is a row per projection, so every process sees it and logs the change of state
once, not on every beat.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ModelEntry
from ..query.indexes import duplicate_value
from .events import StoredEvent
from .tables import events as events_table
from .tables import projection_blocks

__all__ = ["Blocker", "ProjectionBlocks", "reason_for"]

#: Longest reason kept (characters); database messages can run long.
MAX_REASON = 300


@dataclass(frozen=True)
class Blocker:
    """The first event a projection cannot apply, and why."""

    position: int
    event: dict[str, Any]
    reason: str

    def describe(self, name: str) -> str:
        """One line for the log."""
        event = self.event
        return (
            f"Projection {name!r} is blocked at position {self.position} "
            f"({event['type']} of {event['aggregate_id']!r}, version {event['version']}): "
            f"{self.reason}"
        )


def reason_for(exc: BaseException, entry: ModelEntry) -> str:
    """Why an event could not be applied, on one line and without record values: a unique
    index's violation names the fields (as commands' `DuplicateValue` does); other database
    errors give the driver's first line, which names constraints and tables, not values."""
    if isinstance(exc, sa.exc.IntegrityError):
        duplicate = duplicate_value(exc, entry.name, entry.records.table.name, entry.indexes)
        if duplicate is not None:
            return _one_line(f"{type(duplicate).__name__}: {duplicate.message}")
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return _one_line(f"{type(exc.orig).__name__}: {exc.orig}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= MAX_REASON else first[: MAX_REASON - 3] + "..."


class ProjectionBlocks:
    """Reads and writes the blocked projections' rows, in the caller's transaction."""

    def blocker(self, conn: Connection, event: StoredEvent, reason: str) -> Blocker:
        """The `Blocker` for `event`, its id read from the store."""
        event_id = conn.execute(
            sa.select(events_table.c.event_id).where(events_table.c.position == event.position)
        ).scalar_one()
        return Blocker(event.position, {
            "event_id": event_id, "aggregate_id": event.aggregate_id,
            "version": event.version, "type": event.type,
        }, reason)

    def blocked(self, conn: Connection, names: Iterable[str]) -> dict[str, Blocker]:
        """The blocked ones among `names`."""
        wanted = list(names)
        if not wanted:
            return {}
        rows = conn.execute(
            sa.select(projection_blocks).where(projection_blocks.c.name.in_(wanted))
        ).mappings()
        return {row["name"]: Blocker(int(row["position"]), dict(row["event"]), row["reason"])
                for row in rows}

    def everything(self, conn: Connection) -> dict[str, dict[str, Any]]:
        """Every blocked projection as `cqrs.status` shows it:
        `{"position", "event", "reason", "since"}`."""
        rows = conn.execute(sa.select(projection_blocks)).mappings()
        return {row["name"]: {"position": int(row["position"]), "event": dict(row["event"]),
                              "reason": row["reason"], "since": row["since"].isoformat()}
                for row in rows}

    def record(self, conn: Connection, name: str, blocker: Blocker,
               now: datetime.datetime) -> None:
        self.clear(conn, name)
        conn.execute(sa.insert(projection_blocks).values(
            name=name, position=blocker.position, event=blocker.event,
            reason=blocker.reason, since=now,
        ))

    def clear(self, conn: Connection, name: str) -> None:
        conn.execute(sa.delete(projection_blocks).where(projection_blocks.c.name == name))
