"""Appends that PostgreSQL runs as one statement, to spend one network round trip, not four.

Both build on the same core: the event's row is selected from a subquery that takes the
appenders' shared lock (`EVENT_LOCK`, see store.py), so the lock is held before the row's
position is drawn, and the event's audit outbox entry is inserted from the event's RETURNING,
so it exists exactly when the event does.

- `append_statement`: one event and its audit entry (any command's single event).
- `create_statement`: a whole create command. The event is appended only if the registry
  version still equals the one the caller's cached model belongs to, and no row of the
  record table holds the aggregate id (a record written while the model was in crud mode
  must get its snapshot first); a taken (model, aggregate, version) does nothing. With a
  command id, the idempotency record is inserted from the event's RETURNING with its
  answer (the command's result, position included, or the record for a hybrid
  `records.create`); in hybrid mode the record table's row too. The statement returns the
  position, NULL when nothing was appended: the caller then lets the full command path
  decide (it gives the exact error, or runs the command on the current model).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..records.pg_statements import AUDIT_COLUMNS
from ..tables import audit_outbox, idempotency_keys, registry_state
from .tables import events as events_table

__all__ = ["EVENT_COLUMNS", "EVENT_LOCK", "append_statement", "create_statement"]

#: The advisory lock key that orders appenders against position readers (see store.py).
EVENT_LOCK = 727_302
#: The columns an append gives (the position comes from the sequence).
EVENT_COLUMNS = tuple(c.name for c in events_table.c if c.name != "position")
_KEY_COLUMNS = ("key", "model", "operation", "result", "created_at")


def _params(table: sa.Table, names: tuple[str, ...], prefix: str) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names]


def _event_param(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=events_table.c[name].type)


def _appended(*conditions: sa.ColumnElement[bool], source: Any = None) -> Any:
    """The event insert as a CTE named `appended`, returning the position; parameters are
    the event's columns by name."""
    lock = sa.select(
        sa.func.pg_advisory_xact_lock_shared(EVENT_LOCK).label("locked")
    ).subquery("appender_lock")
    rows = lock if source is None else lock.join(source, sa.true())
    values = sa.select(*[_event_param(name) for name in EVENT_COLUMNS]).select_from(rows)
    inserted = (
        postgresql.insert(events_table)
        .from_select(list(EVENT_COLUMNS), values.where(*conditions))
        .on_conflict_do_nothing(index_elements=["model", "aggregate_id", "version"])
        .returning(events_table.c.position)
    )
    return inserted.cte("appended")


def _audited(appended: Any) -> Any:
    """The audit entry (parameters `a_<column>`), inserted once per appended event."""
    values = sa.select(*_params(audit_outbox, AUDIT_COLUMNS, "a_")).select_from(appended)
    return sa.insert(audit_outbox).from_select(list(AUDIT_COLUMNS), values).cte("audited")


def append_statement() -> sa.Select[Any]:
    """One event and its audit entry; returns the position (no row on a taken version)."""
    appended = _appended()
    return sa.select(appended.c.position).add_cte(_audited(appended))


def create_statement(
    records: sa.Table, *, key: str | None, hybrid: bool
) -> sa.Select[Any]:
    """A create command in one statement (see the module docstring). Parameters: the
    event's columns, `a_<column>` for its audit entry, `seen_version`; with `key="command"`
    the command id as `k_key`, `k_model`, `k_operation`, `k_created_at` and the answer's
    `k_events`, with another `key` (a records write's operation) the answer as `k_result`;
    with `hybrid`, `r_<column>` for the record row. Returns one row,
    `(registry_version, position)`."""
    state = (
        sa.select(registry_state.c.version.label("registry_version"))
        .where(registry_state.c.id == 1)
        .cte("state")
    )
    free = ~sa.exists().where(records.c.id == _event_param("aggregate_id"))
    appended = _appended(state.c.registry_version == sa.bindparam("seen_version"), free,
                         source=state)
    statement = sa.select(
        state.c.registry_version,
        sa.select(appended.c.position).scalar_subquery().label("position"),
    ).add_cte(_audited(appended))
    if key is not None:
        statement = statement.add_cte(_keyed(appended, command=key == "command"))
    if hybrid:
        columns = tuple(records.c.keys())
        values = sa.select(*_params(records, columns, "r_")).select_from(appended)
        statement = statement.add_cte(
            sa.insert(records).from_select(list(columns), values).cte("projected")
        )
    return statement


def _keyed(appended: Any, *, command: bool) -> Any:
    """The idempotency record, inserted with the event: a second delivery of the command id
    fails the statement on the key's primary key (and waits for an uncommitted first one)."""
    params: dict[str, sa.ColumnElement[Any]] = {
        name: sa.bindparam(f"k_{name}", type_=idempotency_keys.c[name].type)
        for name in _KEY_COLUMNS
    }
    if command:
        # The command's answer, built where its position is known, in its keys' order.
        params["result"] = sa.func.json_build_object(
            sa.literal_column("'aggregate_id'"), _event_param("aggregate_id"),
            sa.literal_column("'version'"), _event_param("version"),
            sa.literal_column("'position'"), appended.c.position,
            sa.literal_column("'events'"), sa.bindparam("k_events", type_=sa.JSON),
        )
    values = sa.select(*[params[name] for name in _KEY_COLUMNS]).select_from(appended)
    return (
        sa.insert(idempotency_keys).from_select(list(_KEY_COLUMNS), values).cte("keyed")
    )
