"""`Event`: one fact about one aggregate (a record of a model), as the event store keeps it.

Every event carries what a reader needs without looking anything else up:

    created   data = {"changes": {field: {"old": None, "new": v}}, "state": {...}}
    updated   data = {"changes": {field: {"old": a, "new": b}}, "state": {...}}
    deleted   data = {"changes": {field: {"old": a, "new": None}}}
    snapshot  data = {"state": {...}}            (a mode switch, from an existing row)
    <custom>  data = {"changes": {...}, "state": {...}, "payload": {...}}

`state` is the aggregate's whole record after the event, as JSON, so that loading an
aggregate reads one row (its last event) and a projection needs no other source. Values are
in their JSON form, as records and audit entries hold them.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..ids import new_id

__all__ = [
    "AppliedEvent",
    "BUILT_IN_TYPES",
    "EVENTS_NS",
    "Event",
    "EventBatch",
    "EventDraft",
    "EventMetadata",
    "STATE_TYPES",
    "StoredEvent",
]

EVENTS_NS = "events"
BUILT_IN_TYPES = frozenset({"created", "updated", "deleted", "snapshot"})
#: Types whose data holds the aggregate's whole state after the event.
STATE_TYPES = frozenset({"created", "updated", "snapshot"})


class EventMetadata(BaseModel):
    """Who caused an event and under which command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None = None
    role: str | None = None
    command_id: str | None = None
    correlation_id: str | None = None


class _EventData:
    """What an event's `data` says, for both `Event` and `StoredEvent`."""

    __slots__ = ()
    type: str
    data: dict[str, Any]

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        changes: dict[str, dict[str, Any]] = self.data.get("changes", {})
        return changes

    @property
    def state(self) -> dict[str, Any] | None:
        """The aggregate after this event; None after a delete."""
        state: dict[str, Any] | None = self.data.get("state")
        return state

    @property
    def is_deletion(self) -> bool:
        return self.type == "deleted" or self.data.get("deleted") is True


class Event(_EventData, BaseModel):
    """An event as stored; `position` is None until the store has appended it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int | None = None
    event_id: str = Field(default_factory=new_id)
    model: str
    aggregate_id: str
    version: int = Field(ge=1)
    type: str = Field(min_length=1, max_length=64)
    data: dict[str, Any]
    metadata: EventMetadata = EventMetadata()
    schema_version: int = Field(ge=1)
    timestamp: datetime.datetime
    ns: str = EVENTS_NS

    def to_row(self) -> dict[str, Any]:
        row = {
            "event_id": self.event_id,
            "model": self.model,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "type": self.type,
            "data": self.data,
            "metadata": self.metadata.model_dump(),
            "schema_version": self.schema_version,
            "ts": self.timestamp,
            "ns": self.ns,
        }
        if self.position is not None:
            row["position"] = self.position
        return row

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Event:
        return cls.model_construct(
            position=row["position"],
            event_id=row["event_id"],
            model=row["model"],
            aggregate_id=row["aggregate_id"],
            version=row["version"],
            type=row["type"],
            data=row["data"],
            metadata=EventMetadata.model_construct(**row["metadata"]),
            schema_version=row["schema_version"],
            timestamp=row["ts"],
            ns=row["ns"],
        )

    def to_json(self) -> dict[str, Any]:
        """The event as the feed sends it (times as ISO 8601 text)."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """What projections need of an event, read without building a full `Event` (the
    projector reads tens of thousands a second): its state but not its changes, and no
    metadata."""

    position: int
    aggregate_id: str
    version: int
    type: str
    state: dict[str, Any] | None
    #: The data's `deleted` flag (a custom event that ends the aggregate).
    deleted: bool | None
    timestamp: datetime.datetime
    schema_version: int

    @property
    def is_deletion(self) -> bool:
        return self.type == "deleted" or self.deleted is True


@dataclass(frozen=True, slots=True)
class EventBatch:
    """A batch of one model's events as projections apply it: the positions read, and each
    aggregate's last event among them."""

    positions: list[int]
    last: dict[str, StoredEvent]

    def after(self, position: int) -> tuple[dict[str, StoredEvent], int]:
        """The part of the batch after `position` (a projection further on than the batch's
        start): the last events among it, and how many events it holds. An aggregate's last
        event is in that part whenever any of its events is."""
        count = len(self.positions) - bisect.bisect_right(self.positions, position)
        if count == len(self.positions):
            return self.last, count
        return {agg: e for agg, e in self.last.items() if e.position > position}, count


#: An event as projections take it: appended in the writing transaction, or read back.
AppliedEvent = Event | StoredEvent


class EventDraft(BaseModel):
    """What a custom command handler returns: an event type and the field changes it makes
    (`{field: new value}`); the store fills in versions, old values, state and metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    changes: dict[str, Any] = Field(default_factory=dict)
    #: True ends the aggregate, as a delete does.
    deletes: bool = False

