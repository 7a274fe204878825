"""Work that PostgreSQL runs as one statement, to spend one network round trip, not four.

A create must check the registry version, insert the record, insert its audit outbox entry
and, when given, its idempotency key. On PostgreSQL these become data-modifying CTEs of one
statement: the record is inserted only if the registry version still equals the version the
caller validated against, and the statement returns the version it saw. A caller that finds
nothing inserted reloads its registry and tries again, so Invariant 2 holds without a separate
version query. A read likewise returns the record with the registry version beside it, and
needs no transaction. (SQLite runs in-process, where round trips cost nothing, and has no
data-modifying CTEs; it takes the plain path.)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..tables import audit_outbox, idempotency_keys, registry_state
from .table import RecordTable

__all__ = ["AUDIT_COLUMNS", "KEY_COLUMNS", "create_statement", "read_statement"]

AUDIT_COLUMNS = (
    "model", "record_id", "operation", "user_id", "ts", "changes", "metadata", "ns", "entry_hash",
)
KEY_COLUMNS = ("key", "model", "operation", "result", "created_at")


def _params(table: sa.Table, names: tuple[str, ...], prefix: str) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names]


def create_statement(records: RecordTable, *, with_key: bool) -> sa.Select[Any]:
    """Parameters: `r_<column>` for the record, `a_<column>` for the audit entry (its
    record_id comes from the record), `k_<column>` for the key, and `seen_version`. Returns
    one row: `(registry_version, inserted)`."""
    table = records.table
    state = (
        sa.select(registry_state.c.version.label("registry_version"))
        .where(registry_state.c.id == 1)
        .cte("state")
    )
    columns = tuple(table.c.keys())
    record_values = (
        sa.select(*_params(table, columns, "r_"))
        .select_from(state)
        .where(state.c.registry_version == sa.bindparam("seen_version"))
    )
    inserted = (
        sa.insert(table).from_select(list(columns), record_values).returning(table.c.id).cte("rec")
    )
    audit_values = sa.select(
        *[
            inserted.c.id if name == "record_id" else param
            for name, param in zip(AUDIT_COLUMNS, _params(audit_outbox, AUDIT_COLUMNS, "a_"),
                                   strict=True)
        ]
    ).select_from(inserted)
    audit = sa.insert(audit_outbox).from_select(list(AUDIT_COLUMNS), audit_values).cte("aud")
    statement = sa.select(
        state.c.registry_version,
        sa.exists(sa.select(inserted.c.id)).label("inserted"),
    ).add_cte(audit)
    if with_key:
        key_values = sa.select(*_params(idempotency_keys, KEY_COLUMNS, "k_")).select_from(inserted)
        key = sa.insert(idempotency_keys).from_select(list(KEY_COLUMNS), key_values).cte("idem")
        statement = statement.add_cte(key)
    return statement


def read_statement(records: RecordTable) -> sa.Select[Any]:
    """One record by `record_id`, with the registry version as `dmr_registry_version`. The
    caller trusts the row only if that version is the one its cached model belongs to."""
    table = records.table
    version = (
        sa.select(registry_state.c.version).where(registry_state.c.id == 1).scalar_subquery()
    )
    return sa.select(version.label("dmr_registry_version"), table).where(
        table.c.id == sa.bindparam("record_id")
    )
