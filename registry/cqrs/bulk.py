"""Set-based writes of a whole batch of projection rows: one statement per table and batch.

The projector writes thousands of rows per batch. On PostgreSQL each column of a small batch
travels as one array parameter that `unnest` turns back into rows, and a large batch is
COPYed into a temporary table, so a batch is one INSERT (one parse, one plan) rather than
one execution per row; keys to delete or read go as one JSON array. Values
are converted by each column type's own bind conversion, exactly as an ordinary insert of
the same rows would store them. SQLite has no arrays, and no round trips to save: it runs
the equivalent statement once per row (executemany) and chunks its IN lists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["delete_keys", "insert_rows", "select_keys", "upsert_newer"]

#: Keys per IN (...) list on SQLite, well under its parameter limit.
_IN_CHUNK = 500
#: From this many rows on, PostgreSQL loads a batch with COPY rather than arrays.
COPY_FROM_ROWS = 500


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(*_unnest_insert(conn, table, rows))
    else:
        conn.execute(sa.insert(table), list(rows))


def upsert_newer(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    kept: Iterable[str] = (),
    version: str = "version",
) -> None:
    """Insert `rows`, or overwrite the stored row of the same `key` when the new row's
    `version` is higher (never an older state over a newer one); `kept` columns keep their
    stored values on an overwrite."""
    if not rows:
        return
    unchanged = {key, *kept}
    names = [name for name in rows[0] if name not in unchanged]
    if conn.dialect.name == "postgresql":
        sql, params = _unnest_insert(conn, table, rows)
        quote = conn.dialect.identifier_preparer.quote
        updates = ", ".join(f"{quote(name)} = EXCLUDED.{quote(name)}" for name in names)
        sql += (
            f" ON CONFLICT ({quote(key)}) DO UPDATE SET {updates}"
            f" WHERE {quote(table.name)}.{quote(version)} < EXCLUDED.{quote(version)}"
        )
        conn.exec_driver_sql(sql, params)
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in names},
        where=table.c[version] < statement.excluded[version],
    )
    conn.execute(statement, list(rows))


def delete_keys(conn: Connection, column: sa.Column[Any], keys: Sequence[Any]) -> None:
    """Delete the rows whose `column` is one of `keys`."""
    for condition in _key_conditions(conn, column, keys):
        conn.execute(sa.delete(column.table).where(condition))


def select_keys(
    conn: Connection, query: sa.Select[Any], column: sa.Column[Any], keys: Sequence[Any]
) -> list[sa.RowMapping]:
    """The rows of `query` whose `column` is one of `keys`."""
    found: list[sa.RowMapping] = []
    for condition in _key_conditions(conn, column, keys):
        found.extend(conn.execute(query.where(condition)).mappings())
    return found


def _key_conditions(
    conn: Connection, column: sa.Column[Any], keys: Sequence[Any]
) -> Iterable[sa.ColumnElement[bool]]:
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        # One JSON text (json.dumps is C; psycopg's array text format is not) expanded by
        # the server.
        listed = sa.cast(sa.bindparam(None, json.dumps(list(keys)), type_=sa.Text),
                         postgresql.JSON)
        yield column.in_(sa.select(sa.func.json_array_elements_text(listed)))
        return
    for start in range(0, len(keys), _IN_CHUNK):
        yield column.in_(list(keys[start:start + _IN_CHUNK]))


def _unnest_insert(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """`INSERT INTO table (...) SELECT ...` from the rows, and its parameters: from `unnest`
    of one array per column for a few rows, from a COPY into a temporary table for many
    (the arrays' parameter text costs more than COPY's per-row format beyond a few
    hundred rows)."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    names = list(rows[0])
    types = [table.c[name].type for name in names]
    converts = [t.dialect_impl(dialect).bind_processor(dialect) for t in types]
    target = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) "
    if len(rows) >= COPY_FROM_ROWS:
        staged = _copy_to_temporary(conn, names, types, converts, rows)
        return target + f"SELECT {', '.join(map(quote, names))} FROM {staged}", {}
    arrays, columns, params = [], [], {}
    for n, (name, column_type, convert) in enumerate(zip(names, types, converts, strict=True)):
        values = [row[name] for row in rows]
        params[f"c{n}"] = values if convert is None else [convert(v) for v in values]
        # A collation (record ids have one) belongs to the column, not to an array cast.
        element = column_type.compile(dialect=dialect).split(" COLLATE ")[0]
        arrays.append(f"%(c{n})s::{element}[]")
        columns.append(f"c{n}")
    listed = ", ".join(columns)
    return target + f"SELECT {listed} FROM unnest({', '.join(arrays)}) AS given({listed})", params


def _copy_to_temporary(
    conn: Connection,
    names: list[str],
    types: list[sa.types.TypeEngine[Any]],
    converts: list[Any],
    rows: Sequence[Mapping[str, Any]],
) -> str:
    """COPY the rows into a new temporary table (dropped at commit); returns its name."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    staged = f"dmr_staged_{uuid.uuid4().hex[:12]}"
    definition = ", ".join(f"{quote(name)} {column_type.compile(dialect=dialect)}"
                           for name, column_type in zip(names, types, strict=True))
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {staged} ({definition}) ON COMMIT DROP")
    columns = [
        [row[name] for row in rows] if convert is None
        else [convert(row[name]) for row in rows]
        for name, convert in zip(names, converts, strict=True)
    ]
    driver: Any = conn.connection.dbapi_connection
    with driver.cursor() as cursor, cursor.copy(
        f"COPY {staged} ({', '.join(map(quote, names))}) FROM STDIN"
    ) as copy:
        for values in zip(*columns, strict=True):
            copy.write_row(values)
    return staged
