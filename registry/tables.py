"""The catalog tables every registry database has, and the column types records use.

Catalog: model definitions and their history, the registry version counter, the audit outbox
and blocks, and idempotency keys. Record tables are built per model in `records.py`.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "EncodedJSON",
    "JSONText",
    "JSONType",
    "UTCDateTime",
    "DecimalType",
    "audit_blocks",
    "audit_chain",
    "audit_outbox",
    "catalog",
    "idempotency_keys",
    "model_history",
    "models",
    "registry_state",
]

#: JSON kept as written. Not JSONB: JSONB reorders object keys, and the order of a model's
#: properties is its field order.
JSONType = sa.JSON()
#: SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
BigSerial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[datetime.datetime]):
    """Timezone-aware UTC datetimes on every backend; a naive value is taken to be UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        return as_utc(value) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        # as_utc, inlined: a page of records converts a few hundred of these.
        if value is None:
            return None
        moment: datetime.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=datetime.UTC)
        return moment if moment.tzinfo is datetime.UTC else moment.astimezone(datetime.UTC)


class DecimalType(sa.TypeDecorator[decimal.Decimal]):
    """NUMERIC on PostgreSQL; exact decimal text on SQLite, which has no decimal type."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else decimal.Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        return decimal.Decimal(value) if value is not None else None


class JSONText(sa.TypeDecorator[Any]):
    """JSON stored as the exact text it was written as (a `str` is taken to be JSON text).

    The audit outbox keeps each entry's JSON this way: its hash covers that text, so the text
    is made once, hashed and stored, never encoded twice or reformatted by the database.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if value is not None else None


class EncodedJSON(sa.TypeDecorator[Any]):
    """Any JSON value stored as its canonical JSON text, so that equal values compare equal
    in SQL on every backend (a JSON column does not compare with `=` on PostgreSQL)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if value is not None else None


def as_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


catalog = sa.MetaData()

models = sa.Table(
    "dmr_models",
    catalog,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("name_key", sa.String(64), nullable=False, unique=True),  # lower-cased name
    sa.Column("table_name", sa.String(64), nullable=False, unique=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("schema", JSONType, nullable=False),
    sa.Column("operation_mode", sa.String(16), nullable=False),
    sa.Column("permissions", JSONType, nullable=False),
    sa.Column("ui_overrides", JSONType, nullable=False),
    sa.Column("provenance", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(200)),
)

model_history = sa.Table(
    "dmr_model_history",
    catalog,
    sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("change", sa.String(32), nullable=False),
    sa.Column("schema", JSONType, nullable=False),
    sa.Column("operation_mode", sa.String(16), nullable=False),
    sa.Column("permissions", JSONType, nullable=False),
    sa.Column("ui_overrides", JSONType, nullable=False),
    sa.Column("provenance", JSONType, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("changed_by", sa.String(200)),
    sa.UniqueConstraint("name", "version", name="uq_dmr_model_history_version"),
)

# One row (id = 1). Every change to any model bumps `version`, so a worker learns with one
# primary-key read whether its cached registry is stale.
registry_state = sa.Table(
    "dmr_registry_state",
    catalog,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

audit_outbox = sa.Table(
    "dmr_audit_outbox",
    catalog,
    sa.Column("seq", BigSerial, primary_key=True, autoincrement=True),
    # PostgreSQL hands out `seq` before commit, so seq order is not commit order there; the
    # writing transaction's id lets compaction take only entries whose transaction is settled.
    sa.Column("tx_id", sa.BigInteger),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(200)),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("changes", JSONText, nullable=False),
    sa.Column("metadata", JSONText, nullable=False),
    sa.Column("ns", sa.String(64), nullable=False),
    # Keyed hash of the entry's canonical JSON (registry/audit/keys.py), written with it:
    # a pending entry changed afterwards no longer matches it, which verification reports and
    # compaction refuses to seal into a block.
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Index("ix_dmr_audit_outbox_record", "model", "record_id", "seq"),
    # Without AUTOINCREMENT SQLite reuses the highest seq once compaction has deleted it, and
    # an entry would share its seq with one already in a block.
    sqlite_autoincrement=True,
)

sa.event.listen(
    audit_outbox,
    "after_create",
    sa.DDL(  # type: ignore[no-untyped-call]
        "ALTER TABLE dmr_audit_outbox ALTER COLUMN tx_id "
        "SET DEFAULT (pg_current_xact_id()::text::bigint)"
    ).execute_if(dialect="postgresql"),
)

# Compacted audit entries: each block holds one batch in commit order, compressed with the
# codec it names, and chained to the block before it by `prev_hash` (registry/audit/blocks.py
# says what the hash covers). The index columns let history skip blocks without opening them.
audit_blocks = sa.Table(
    "dmr_audit_blocks",
    catalog,
    sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
    # Lowest and highest seq in the block; on PostgreSQL the next block may hold a lower seq
    # than this one's highest (seq is taken before commit), but never the same one twice.
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("codec", sa.String(16), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    # Bytes of the entries as JSON lines before the codec.
    sa.Column("raw_bytes", sa.BigInteger, nullable=False),
    # Earliest and latest entry timestamp in the block.
    sa.Column("first_ts", UTCDateTime, nullable=False),
    sa.Column("last_ts", UTCDateTime, nullable=False),
    # ",A,B,": the models in the block, matched with LIKE so history reads only their blocks.
    sa.Column("model_names", sa.Text, nullable=False),
    # {model: [entries, raw bytes]}, for per-model statistics.
    sa.Column("model_counts", JSONType, nullable=False),
    # Bloom filter over the block's (model, record id) pairs and actors.
    sa.Column("key_filter", sa.LargeBinary, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_dmr_audit_blocks_time", "last_ts", "first_ts"),
)

# The chain's one row (id = 1). Compaction and purge lock it, so blocks are written one at a
# time in chain order. `head_hash` is the newest block's hash (so deleting the newest block is
# detected too); `anchor_hash` is where verification starts: sixty-four zeros, or the hash of
# the last block that retention purged.
audit_chain = sa.Table(
    "dmr_audit_chain",
    catalog,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("head_block_id", sa.BigInteger),
    sa.Column("anchor_hash", sa.String(64), nullable=False),
    sa.Column("anchor_block_id", sa.BigInteger),
    sa.Column("purged_blocks", sa.BigInteger, nullable=False),
    sa.Column("purged_entries", sa.BigInteger, nullable=False),
    sa.Column("purged_at", UTCDateTime),
)

idempotency_keys = sa.Table(
    "dmr_idempotency_keys",
    catalog,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("result", JSONType),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
