"""CQRS: commands, the event store, projections, the projector and queries.

    events.py       Event (ns="events") and EventDraft, what custom handlers return
    store.py        the append-only event table and the safe head readers follow
    commands.py     CommandRequest (ns="commands"), custom handler registration
    execution.py    running a command: load, decide, append + audit + idempotency
    projections.py  the default projection (record table) and declared projections
    projector.py    applying events exactly once; rebuild into shadow tables
    backfill.py     snapshot events for records that predate a mode switch
    service.py      CqrsService: the above wired together for one registry
"""

from .commands import CommandContext, CommandRequest, command_handler
from .events import Event, EventDraft, EventMetadata

__all__ = [
    "CommandContext",
    "CommandRequest",
    "Event",
    "EventDraft",
    "EventMetadata",
    "command_handler",
]
