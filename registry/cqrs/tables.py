"""The CQRS tables every registry database has: events, checkpoints, declared projections and
mode-switch backfills. They live in the catalog's metadata, so `Database.create_catalog`
creates them with the rest.

Projection tables themselves (one per declared projection, plus its member table) are built
per definition in `projections.py`; the default projection of a model is its record table.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..tables import BigSerial, JSONType, UTCDateTime, catalog

__all__ = [
    "backfills", "checkpoints", "events", "projection_blocks", "projection_definitions",
]

# Append-only. `position` is the global order readers follow (see store.py for why a reader
# never skips a lower position that commits late); (model, aggregate_id, version) is unique,
# so two writers at the same aggregate version cannot both commit.
events = sa.Table(
    "dmr_events",
    catalog,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("aggregate_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("ns", sa.String(32), nullable=False),
    sa.UniqueConstraint("model", "aggregate_id", "version", name="uq_dmr_events_stream"),
    sa.Index("ix_dmr_events_model_position", "model", "position"),
    sqlite_autoincrement=True,
)

# One row per projection (default projections are named "records:<Model>"). A projector
# locks its row, applies events after `position` and writes the new position in the same
# transaction as the projection's rows.
checkpoints = sa.Table(
    "dmr_projection_checkpoints",
    catalog,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Declared projections as data, so that any worker can maintain and rebuild them.
projection_definitions = sa.Table(
    "dmr_projections",
    catalog,
    sa.Column("name", sa.String(48), primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("definition", JSONType, nullable=False),
    # Bumped by each rebuild and redefinition, so cached table objects are known stale.
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(200)),
)

# A mode switch from crud to cqrs or hybrid appends one snapshot event per existing record,
# in chunks; `last_id` is where the next chunk resumes.
backfills = sa.Table(
    "dmr_cqrs_backfills",
    catalog,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.String(64)),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A projection stopped by an event it cannot apply (blocks.py): the event's position, what
# it was and why. Its checkpoint stays just before that position; the row goes when the
# event applies, or when the projection is rebuilt or reset.
projection_blocks = sa.Table(
    "dmr_projection_blocks",
    catalog,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("event", JSONType, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
)
