"""Writing an import chunk when rows may meet records already stored: unique values and upsert.

A model without unique fields, imported with mode `insert`, takes the plain bulk path
(`bulk.write_batch`) and pays nothing here. Otherwise a chunk is written inside a savepoint:

- A row that repeats a unique value, of a stored record or of an earlier row of the same
  chunk, must not fail the chunk. The write is tried as is (duplicates are rare, and finding
  them costs a query per unique index); when the database refuses it with a unique
  violation, the savepoint is rolled back, the offending rows are found by a query and
  set aside as rejected rows with a `DuplicateValue` error naming the field, and the rest
  is written again. A row of another transaction committed in between is found the same way.
- Upsert (`mode="upsert"`, `key=[field, ...]`): rows whose key matches a stored record update
  it (only the mapped fields; one `update` audit entry with its `changes`, so history and
  as-of see the import); rows whose values equal the record's are done without a write; the
  others are inserted as in `insert` mode. The key must be unique (a declared `x-unique`
  index, or the primary key the model's inspection found) and is checked when the job starts.
  On PostgreSQL the upsert chunks of one model are written one at a time (a transaction-level
  advisory lock): matching and writing then see one state, even for a key that only the
  inspection, not an index, says is unique.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from ..audit import AuditLogger
from ..catalog import ModelEntry
from ..errors import DuplicateValue, UnknownField, ValidationFailed
from ..inspections import stored_inspection
from ..query.indexes import IndexSpec, duplicate_error, duplicate_value
from .bulk import Stamp, Validated, write_batch

__all__ = ["ChunkWrite", "Written", "check_key", "duplicate_of", "write_chunk"]

#: Tries of one chunk's write when unique violations keep appearing (each try sets the rows
#: found aside, so a second try fails only when another writer committed a clash meanwhile).
_ATTEMPTS = 5
#: Key values per matching query (SQLite binds at most 32,766 parameters per statement).
_MATCH_BATCH = 500
_UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class ChunkWrite:
    """What to write and how: one chunk's valid rows, in the chunk's transaction."""

    entry: ModelEntry
    audit: AuditLogger
    batch: str
    stamp: Stamp
    metadata: Mapping[str, Any]
    #: Fields the job's field map writes; an upsert updates only these.
    mapped: Sequence[str]
    #: The upsert key's fields; empty for `insert`.
    key: Sequence[str] = ()
    #: Stop at the first duplicate (on_error="abort") instead of writing the rest.
    abort_on_duplicate: bool = False


@dataclass
class Written:
    """A chunk's write: rows done (inserted, updated or unchanged) and rows set aside."""

    done: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Position -> errors of rows that were not written (duplicates, an empty key).
    rejected: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: The write stopped at a duplicate (abort mode): nothing was written.
    aborted: bool = False


@dataclass
class _Update:
    position: int
    record_id: str
    version: int
    values: dict[str, Any]
    changes: dict[str, dict[str, Any]]


@dataclass
class _Plan:
    inserts: Validated
    updates: list[_Update]
    unchanged: list[int]


def write_chunk(conn: Connection, validated: Validated, how: ChunkWrite) -> Written:
    """Write `validated`'s rows as `how` says; see the module docstring."""
    unique = [spec for spec in how.entry.indexes if spec.unique]
    if not how.key and not unique:
        write_batch(conn, entry=how.entry, audit=how.audit, batch=how.batch,
                    validated=validated, stamp=how.stamp, metadata=how.metadata)
        n = len(validated.positions)
        return Written(done=n, inserted=n)
    if how.key and conn.dialect.name == "postgresql":
        _lock_model(conn, how.entry)
    rejected: dict[int, list[dict[str, Any]]] = {}
    for _ in range(_ATTEMPTS):
        plan = _plan(conn, _without(validated, rejected), how, rejected)
        if how.abort_on_duplicate and rejected:
            return Written(rejected=rejected, aborted=True)
        try:
            with conn.begin_nested():
                _apply(conn, plan, how)
        except (sa.exc.IntegrityError, psycopg.errors.IntegrityError) as exc:
            if not _names_unique_index(exc, how.entry, unique):
                raise
            fresh = _plan(conn, _without(validated, rejected), how, rejected)
            rejected.update(_duplicates(conn, how.entry, unique, fresh))
            if how.abort_on_duplicate and rejected:
                return Written(rejected=rejected, aborted=True)
            continue
        inserted = len(plan.inserts.positions)
        done = inserted + len(plan.updates) + len(plan.unchanged)
        return Written(done=done, inserted=inserted, updated=len(plan.updates),
                       unchanged=len(plan.unchanged), rejected=rejected)
    raise DuplicateValue(
        f"A chunk for {how.entry.name!r} kept meeting unique values that other writers were "
        f"adding at the same time ({_ATTEMPTS} tries).", model=how.entry.name,
    )


# -- the key --------------------------------------------------------------------------------


def check_key(entry: ModelEntry, mode: str, key: Any, mapped: Iterable[str]) -> tuple[str, ...]:
    """The upsert key as field names, checked when a job starts: every field known, mapped
    from the source, and together unique (an `x-unique` index on exactly these fields, or
    the primary key the model's inspection found). Raises `UnknownField` or
    `ValidationFailed` naming what is wrong; returns () for mode `insert`."""
    if mode != "upsert":
        if key:
            raise _bad_key(entry, "a key is only used with mode 'upsert'")
        return ()
    if not key:
        raise _bad_key(entry, "mode 'upsert' needs a key: the field(s) that identify a record")
    fields = tuple(key)
    unknown = sorted({f for f in fields if f not in entry.records.field_types})
    if unknown:
        raise UnknownField(
            f"The upsert key names {', '.join(map(repr, unknown))}, which model "
            f"{entry.name!r} does not have.", model=entry.name, fields=unknown,
            errors=[{"loc": ["options", "key"], "msg": f"Unknown field {f!r}",
                     "type": "unknown_field"} for f in unknown],
        )
    if len(set(fields)) != len(fields):
        raise _bad_key(entry, "the key names a field twice")
    unmapped = [f for f in fields if f not in set(mapped)]
    if unmapped:
        raise _bad_key(entry, f"key field(s) {', '.join(map(repr, unmapped))} have no source "
                              "column in the field map")
    if not _is_unique(entry, fields):
        raise _bad_key(
            entry, f"the key {list(fields)} is not unique: declare \"x-unique\" on it (or a "
                   "unique composite index), or use the primary key its inspection found",
        )
    return fields


def _is_unique(entry: ModelEntry, fields: tuple[str, ...]) -> bool:
    if any(spec.unique and set(spec.fields) == set(fields) for spec in entry.indexes):
        return True
    inspection = stored_inspection(entry) or {}
    primary = inspection.get("primary_key") or []
    return bool(primary) and set(primary) == set(fields)


def _bad_key(entry: ModelEntry, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid import options for {entry.name!r}: {why}.", model=entry.name,
        errors=[{"loc": ["options", "key"], "msg": why, "type": "upsert_key"}],
    )


# -- planning -------------------------------------------------------------------------------


def _plan(
    conn: Connection, validated: Validated, how: ChunkWrite,
    rejected: dict[int, list[dict[str, Any]]],
) -> _Plan:
    """Which rows insert, update or change nothing. For upsert, rows with an empty key or a
    key repeated in the chunk are added to `rejected` (and left out)."""
    if not how.key:
        return _Plan(inserts=validated, updates=[], unchanged=[])
    records = how.entry.records
    names = records.field_names
    key_at = [names.index(f) for f in how.key]
    keyed: dict[tuple[Any, ...], int] = {}
    rows = validated.rows
    for i, (position, row) in enumerate(zip(validated.positions, rows, strict=True)):
        key = tuple(row[k] for k in key_at)
        if any(value is None for value in key):
            rejected[position] = [_error(how.key, "missing_key",
                                         "An upsert row needs a value in every key field.")]
        elif _hashable(key) in keyed:
            rejected[position] = [_duplicate_error(how.entry, how.key, in_chunk=True)]
        else:
            keyed[_hashable(key)] = i
    stored = _stored_by_key(conn, how.entry, how.key, [rows[i][k] for i in
                                                        keyed.values() for k in key_at])
    inserted: list[int] = []
    updates: list[_Update] = []
    unchanged: list[int] = []
    mapped_at = [(name, names.index(name)) for name in how.mapped]
    for hashed, i in keyed.items():
        position, row = validated.positions[i], rows[i]
        found = stored.get(hashed)
        if found is None:
            inserted.append(position)
            continue
        if len(found) > 1:
            rejected[position] = [_duplicate_error(how.entry, how.key, in_chunk=False)]
            continue
        current = found[0]
        values = {name: row[at] for name, at in mapped_at}
        if all(current[name] == value for name, value in values.items()):
            unchanged.append(position)  # the common case of a re-import, decided cheaply
            continue
        old = records.to_record(current)
        new = records.to_record({**current, **values})
        changes = {f: {"old": old[f], "new": new[f]} for f in how.mapped if old[f] != new[f]}
        if changes:
            updates.append(_Update(position, current["id"], current["version"], values, changes))
        else:
            unchanged.append(position)
    return _Plan(inserts=_without(validated, set(validated.positions) - set(inserted)),
                 updates=updates, unchanged=unchanged)


def _stored_by_key(
    conn: Connection, entry: ModelEntry, key: Sequence[str], flat: list[Any]
) -> dict[tuple[Any, ...], list[Any]]:
    """Stored rows whose key is among the given values (flattened, key by key), locked for
    update on PostgreSQL, by their key (in JSON form)."""
    table = entry.records.table
    width = len(key)
    keys = [tuple(flat[i:i + width]) for i in range(0, len(flat), width)]
    found: dict[tuple[Any, ...], list[Any]] = {}
    columns = [table.c[f] for f in key]
    for where in _matching(conn, columns, keys):
        rows = conn.execute(sa.select(table).where(where).with_for_update()).mappings()
        for row in rows:
            hashed = _hashable(tuple(row[f] for f in key))
            found.setdefault(hashed, []).append(row)
    return found


def _matching(
    conn: Connection, columns: Sequence[sa.Column[Any]], values: list[tuple[Any, ...]]
) -> Iterator[sa.ColumnElement[bool]]:
    """Conditions that together match rows whose `columns` hold one of `values`: on
    PostgreSQL one `= ANY(array)` for a single column (one statement whatever the count);
    otherwise `IN` lists of at most `_MATCH_BATCH`."""
    if not values:
        return
    if len(columns) == 1 and conn.dialect.name == "postgresql":
        column = columns[0]
        array = sa.bindparam("keys", [v[0] for v in values],
                             type_=postgresql.ARRAY(column.type))
        yield column == sa.any_(array)
        return
    for start in range(0, len(values), _MATCH_BATCH):
        part = values[start:start + _MATCH_BATCH]
        yield (columns[0].in_([v[0] for v in part]) if len(columns) == 1
               else sa.tuple_(*columns).in_(part))


def _hashable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values compared in JSON form: a stored value and a validated one that are equal
    (Decimal and its text, a datetime in two zones) compare equal."""
    return tuple(to_jsonable_python(value) for value in values)


def _without(validated: Validated, left_out: Collection[int]) -> Validated:
    """A copy of `validated` without the rows at these positions (`validated` is kept whole
    for the next try)."""
    if not left_out:
        return validated
    kept = Validated(positions=list(validated.positions), columns=list(validated.columns))
    kept.drop(left_out)
    return kept


# -- writing --------------------------------------------------------------------------------


def _apply(conn: Connection, plan: _Plan, how: ChunkWrite) -> None:
    write_batch(conn, entry=how.entry, audit=how.audit, batch=how.batch,
                validated=plan.inserts, stamp=how.stamp, metadata=how.metadata)
    if not plan.updates:
        return
    table = how.entry.records.table
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"), table.c.version == sa.bindparam("b_version"))
        .values(version=table.c.version + 1, updated_at=sa.bindparam("b_at"),
                updated_by=sa.bindparam("b_by"),
                **{f: sa.bindparam(f"v_{f}") for f in how.mapped})
    )
    conn.execute(statement, [
        {"b_id": u.record_id, "b_version": u.version, "b_at": how.stamp.at,
         "b_by": how.stamp.user_id, **{f"v_{f}": u.values[f] for f in how.mapped}}
        for u in plan.updates
    ])
    how.audit.append_rows(conn, [
        {"at": how.stamp.at, "model_name": how.entry.name, "record_id": update.record_id,
         "operation": "update", "user_id": how.stamp.user_id, "changes": update.changes,
         "metadata": {"role": how.stamp.user_role, "version": update.version + 1,
                      **how.metadata}}
        for update in plan.updates
    ])


def _lock_model(conn: Connection, entry: ModelEntry) -> None:
    name = f"dmr-upsert:{entry.records.table.name}"
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# -- duplicates -----------------------------------------------------------------------------


def _names_unique_index(exc: Exception, entry: ModelEntry, unique: Sequence[IndexSpec]) -> bool:
    """Whether `exc` is the violation of one of the model's unique indexes (not of a primary
    key, which would be a fault of ours and must surface)."""
    return duplicate_of(exc, entry, unique) is not None


def duplicate_of(
    exc: Exception, entry: ModelEntry, unique: Sequence[IndexSpec] | None = None
) -> DuplicateValue | None:
    """The `DuplicateValue` that a bulk write's integrity error means (from SQLAlchemy, or
    from psycopg when the write was a COPY), None for any other error."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate != _UNIQUE_VIOLATION:
        return None
    wrapped = exc if isinstance(exc, sa.exc.IntegrityError) else sa.exc.IntegrityError(
        None, None, exc
    )
    specs = unique if unique is not None else [s for s in entry.indexes if s.unique]
    return duplicate_value(wrapped, entry.name, entry.records.table.name, specs)


def _duplicates(
    conn: Connection, entry: ModelEntry, unique: Sequence[IndexSpec], plan: _Plan
) -> dict[int, list[dict[str, Any]]]:
    """Rows of the plan that would repeat a unique value: of a stored record other than the
    one the row updates, or of an earlier row of the chunk."""
    names = entry.records.field_names
    writes: list[tuple[int, str | None, dict[str, Any]]] = [
        (p, None, dict(zip(names, row, strict=True)))
        for p, row in zip(plan.inserts.positions, plan.inserts.rows, strict=True)
    ]
    writes += [(u.position, u.record_id, u.values) for u in plan.updates]
    found: dict[int, list[dict[str, Any]]] = {}
    for spec in unique:
        # An update leaves unmapped fields as they are: it cannot break an index on them.
        candidates = [(p, target, tuple(values[f] for f in spec.fields))
                      for p, target, values in writes
                      if all(f in values for f in spec.fields)]
        candidates = [c for c in candidates if all(v is not None for v in c[2])]
        holders = _holders(conn, entry, spec.fields, [c[2] for c in candidates])
        seen: set[tuple[Any, ...]] = set()
        for position, target, value in candidates:
            hashed = _hashable(value)
            taken = holders.get(hashed, set()) - {target}
            if taken or hashed in seen:
                found.setdefault(position, []).append(
                    _duplicate_error(entry, spec.fields, in_chunk=not taken))
            seen.add(hashed)
    return found


def _holders(
    conn: Connection, entry: ModelEntry, fields: Sequence[str], values: list[tuple[Any, ...]]
) -> dict[tuple[Any, ...], set[str]]:
    """Ids of stored records holding each of the value tuples, by value (in JSON form)."""
    table = entry.records.table
    columns = [table.c[f] for f in fields]
    holders: dict[tuple[Any, ...], set[str]] = {}
    for where in _matching(conn, columns, values):
        for row in conn.execute(sa.select(table.c.id, *columns).where(where)).mappings():
            hashed = _hashable(tuple(row[f] for f in fields))
            holders.setdefault(hashed, set()).add(row["id"])
    return holders


def _duplicate_error(entry: ModelEntry, fields: Sequence[str], *, in_chunk: bool) -> dict[str, Any]:
    if in_chunk:
        names = ", ".join(repr(f) for f in fields)
        message = f"An earlier row of the same chunk has this value in {names} too."
    else:
        message = duplicate_error(entry.name, tuple(fields)).message
    return _error(fields, "duplicate_value", message)


def _error(fields: Sequence[str], kind: str, message: str) -> dict[str, Any]:
    # A single field is the error's location; several are named in the message and `fields`.
    return {"loc": list(fields) if len(fields) == 1 else [], "msg": message, "type": kind,
            "fields": list(fields)}
