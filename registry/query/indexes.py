"""Indexes a model declares, and keeping a record table's indexes in step with them.

A field asks for an index with the vendor keyword `"x-index": true` and for a unique
constraint with `"x-unique": true` (from Pydantic: `Field(json_schema_extra={"x-index":
True})`); composite indexes go on the model, `"x-indexes": [["a", "b"], {"fields": ["c",
"d"], "unique": true}]` (from Pydantic: `model_config = ConfigDict(json_schema_extra=...)`).

A single-field index is built on `(field, created_at, id)`, the field then the default order:
an equality filter's page in the default order is the index read in order from its first
entry (or from a cursor's), 51 entries whatever the number of matches; a range filter finds
its matches' keys and order in the index alone; keyset pages ordered by the field read it in
field order and sort only each run of equal values by id (PostgreSQL's incremental sort).
Every table also gets one on `(created_at, id)`, the default order, and every composite
non-unique index carries `created_at` (PostgreSQL's INCLUDE). Unique indexes hold just their
fields (uniqueness is on the fields alone); nulls never clash (SQL's rule). Indexes we manage
are named `dmr_ix_...` / `dmr_ux_...`; others on the table are left alone.

An index's name hashes its definition, so an index whose definition changed (one built by an
earlier version) is a new index to the sync: it is built beside the old one, and the old one
dropped after, so the table is never without it.

On PostgreSQL an index is built with CREATE INDEX CONCURRENTLY, which cannot run inside a
transaction: the registration commits first, then `sync_indexes` builds what is missing and
drops what is no longer declared, one table at a time under an advisory lock. A build that
failed (or whose process died) leaves an INVALID index; the next sync drops and rebuilds it. A
unique build that meets duplicate values raises `DuplicateValue` and leaves no index behind.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..database import Database
from ..errors import DuplicateValue, InvalidIndex
from ..types import FieldKind, FieldType

__all__ = [
    "IndexSpec",
    "declared_indexes",
    "duplicate_error",
    "duplicate_value",
    "index_states",
    "refuse_duplicates",
    "sync_indexes",
]

X_INDEX = "x-index"
X_UNIQUE = "x-unique"
X_INDEXES = "x-indexes"
MANAGED_PREFIXES = ("dmr_ix_", "dmr_ux_")
#: Columns every record table has, which composite indexes may name too.
_SYSTEM_INDEXABLE = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
#: Most fields in one index (PostgreSQL's limit is 32 columns).
MAX_INDEX_FIELDS = 8
_MAX_INDEXES = 32


@dataclass(frozen=True)
class IndexSpec:
    """One index on a record table."""

    fields: tuple[str, ...]
    unique: bool = False
    #: Made for every table (the default order), not declared by the model.
    system: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        if self.unique or len(self.fields) != 1 or self.fields == ("id",):
            return self.fields
        # The field, then the default order's columns (see the module's docstring).
        return tuple(dict.fromkeys((*self.fields, _DEFAULT_ORDER, "id")))

    @property
    def carried(self) -> tuple[str, ...]:
        """Columns the index carries beside its keys: `created_at`, the default order, in
        every non-unique index whose keys do not already hold it (composite ones), so a
        filtered page in the default order finds its rows' keys in the index alone (see
        statements.py)."""
        if self.unique or self.system or _DEFAULT_ORDER in self.columns:
            return ()
        return (_DEFAULT_ORDER,)

    def name_on(self, table_name: str) -> str:
        """A stable name within PostgreSQL's 63 bytes, unique per table, column list and
        carried columns (an index whose definition changes gets a new name, so a sync
        builds it afresh)."""
        prefix = "dmr_ux_" if self.unique else "dmr_ix_"
        definition = ",".join(self.columns)
        if self.carried:
            definition += f"|{','.join(self.carried)}"
        digest = hashlib.sha256(f"{table_name}|{definition}".encode()).hexdigest()
        readable = re.sub(r"[^a-z0-9_]", "", "_".join(self.fields).lower())[:30]
        return f"{prefix}{readable}_{digest[:12]}"

    def describe(self, table_name: str) -> dict[str, Any]:
        return {"name": self.name_on(table_name), "fields": list(self.fields),
                "unique": self.unique}


_DEFAULT_ORDER = "created_at"
DEFAULT_ORDER_INDEX = IndexSpec((_DEFAULT_ORDER,), system=True)


def declared_indexes(
    model_name: str, schema: Mapping[str, Any], field_types: Mapping[str, FieldType]
) -> list[IndexSpec]:
    """The indexes a stored schema declares, system index first. Raises `InvalidIndex` for a
    malformed declaration, an unknown field, or a field stored as JSON."""
    found: list[IndexSpec] = [DEFAULT_ORDER_INDEX]
    for name, node in (schema.get("properties") or {}).items():
        if not isinstance(node, Mapping):
            continue
        for keyword, unique in ((X_INDEX, False), (X_UNIQUE, True)):
            if keyword not in node:
                continue
            if not isinstance(node[keyword], bool):
                raise _invalid(model_name, name, f"has {keyword!r} that is not true or false")
            if node[keyword]:
                found.append(_checked(model_name, (name,), unique, field_types))
    found.extend(_composite(model_name, schema.get(X_INDEXES), field_types))
    unique_specs = list(dict.fromkeys(found))
    if len(unique_specs) > _MAX_INDEXES:
        raise _invalid(model_name, None, f"declares more than {_MAX_INDEXES} indexes")
    return unique_specs


def _composite(
    model_name: str, declared: Any, field_types: Mapping[str, FieldType]
) -> list[IndexSpec]:
    if declared is None:
        return []
    if not isinstance(declared, list):
        raise _invalid(model_name, None, f"has {X_INDEXES!r} that is not a list of indexes")
    specs = []
    for item in declared:
        fields, unique = item, False
        if isinstance(item, Mapping):
            fields, unique = item.get("fields"), item.get("unique", False)
            if set(item) - {"fields", "unique"} or not isinstance(unique, bool):
                raise _invalid(
                    model_name, None,
                    f"has an {X_INDEXES!r} entry other than {{'fields': [...], 'unique': bool}}",
                )
        if (
            not isinstance(fields, list)
            or not 1 <= len(fields) <= MAX_INDEX_FIELDS
            or not all(isinstance(f, str) for f in fields)
            or len(set(fields)) != len(fields)
        ):
            raise _invalid(
                model_name, None,
                f"has an {X_INDEXES!r} entry that is not a list of 1 to {MAX_INDEX_FIELDS} "
                "distinct field names",
            )
        specs.append(_checked(model_name, tuple(fields), unique, field_types))
    return specs


def _checked(
    model_name: str, fields: tuple[str, ...], unique: bool, field_types: Mapping[str, FieldType]
) -> IndexSpec:
    for name in fields:
        if name in _SYSTEM_INDEXABLE:
            continue
        ftype = field_types.get(name)
        if ftype is None:
            raise _invalid(model_name, name, "is named by an index but is not a field")
        if ftype.kind is FieldKind.JSON:
            raise _invalid(
                model_name, name,
                "holds JSON (a list, set, dict or nested model) and cannot be indexed; index "
                "a scalar field",
            )
    return IndexSpec(fields, unique)


def _invalid(model_name: str, field: str | None, why: str) -> InvalidIndex:
    where = f"Field {field!r} of model {model_name!r}" if field else f"Model {model_name!r}"
    return InvalidIndex(f"{where} {why}.", model=model_name, field=field)


# -- the database side -------------------------------------------------------------------


def index_states(conn: Connection, table_name: str) -> dict[str, bool]:
    """Our indexes on the table: name -> whether it is valid (usable)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(:table)"
            ),
            {"table": table_name},
        )
        found = {str(name): bool(valid) for name, valid in rows}
    else:
        found = {str(ix["name"]): True for ix in sa.inspect(conn).get_indexes(table_name)}
    return {name: valid for name, valid in found.items() if name.startswith(MANAGED_PREFIXES)}


def refuse_duplicates(
    conn: Connection, model_name: str, table: sa.Table, specs: Sequence[IndexSpec]
) -> None:
    """Raise `DuplicateValue` when stored rows already repeat a value that a unique index
    about to be built must hold once (run in the registering transaction, before commit)."""
    existing = index_states(conn, table.name)
    for spec in specs:
        if not spec.unique or existing.get(spec.name_on(table.name)):
            continue
        columns = [table.c[name] for name in spec.fields]
        clash = (
            sa.select(sa.literal(1))
            .where(*(column.is_not(None) for column in columns))
            .group_by(*columns)
            .having(sa.func.count() > 1)
            .limit(1)
        )
        if conn.execute(clash.select_from(table)).first() is not None:
            raise _duplicate(model_name, spec.fields, existing_rows=True)


def sync_indexes(
    database: Database, model_name: str, table: sa.Table, specs: Sequence[IndexSpec]
) -> None:
    """Build the declared indexes that are missing, rebuild invalid ones, and drop ours that
    are no longer declared. Raises `DuplicateValue` when a unique index meets duplicates."""
    wanted = {spec.name_on(table.name): spec for spec in specs}
    if database.is_postgresql:
        _sync_postgresql(database, model_name, table, wanted)
    else:
        with database.write() as conn:
            _sync_in_transaction(conn, model_name, table, wanted)


def _sync_in_transaction(
    conn: Connection, model_name: str, table: sa.Table, wanted: Mapping[str, IndexSpec]
) -> None:
    existing = index_states(conn, table.name)
    for name in existing.keys() - wanted.keys():
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {_quoted(conn, name)}"))
    for name, spec in wanted.items():
        if name not in existing:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(_create_sql(conn, table.name, name, spec, "")))
            except sa.exc.IntegrityError:
                raise _duplicate(model_name, spec.fields, existing_rows=True) from None


def _sync_postgresql(
    database: Database, model_name: str, table: sa.Table, wanted: Mapping[str, IndexSpec]
) -> None:
    with database.single_statement() as conn:
        # One sync per table at a time: an index another sync is building looks invalid, and
        # must not be dropped as a failed leftover.
        lock_key = int.from_bytes(
            hashlib.sha256(table.name.encode()).digest()[:8], "big", signed=True
        )
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": lock_key})
        try:
            existing = index_states(conn, table.name)
            for name in [n for n, valid in existing.items() if not valid]:
                conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(conn, name)}"))
            # New indexes first, then the undeclared ones go (even if a unique build met
            # duplicates): an index whose definition changed is replaced with no moment
            # where the table lacks it.
            try:
                for name, spec in wanted.items():
                    if not existing.get(name):
                        _build_concurrently(conn, model_name, table.name, name, spec)
            finally:
                for name in [n for n, valid in existing.items() if valid and n not in wanted]:
                    conn.execute(
                        sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(conn, name)}")
                    )
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})


def _build_concurrently(
    conn: Connection, model_name: str, table_name: str, name: str, spec: IndexSpec
) -> None:
    try:
        conn.execute(sa.text(_create_sql(conn, table_name, name, spec, "CONCURRENTLY")))
    except sa.exc.DBAPIError as exc:
        # A failed concurrent build leaves an INVALID index that still slows every write.
        conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(conn, name)}"))
        if isinstance(exc, sa.exc.IntegrityError):
            raise _duplicate(model_name, spec.fields, existing_rows=True) from None
        raise


def _create_sql(conn: Connection, table_name: str, name: str, spec: IndexSpec, how: str) -> str:
    keys, carried = list(spec.columns), list(spec.carried)
    include = ""
    if conn.dialect.name == "postgresql":
        if carried:
            include = f" INCLUDE ({', '.join(_quoted(conn, column) for column in carried)})"
    else:
        keys += carried  # SQLite has no INCLUDE; trailing keys cover the same columns
    columns = ", ".join(_quoted(conn, column) for column in keys)
    unique = "UNIQUE " if spec.unique else ""
    concurrently = f"{how} " if how else ""
    return (
        f"CREATE {unique}INDEX {concurrently}IF NOT EXISTS {_quoted(conn, name)} "
        f"ON {_quoted(conn, table_name)} ({columns}){include}"
    )


def _quoted(conn: Connection, identifier: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(identifier)


# -- unique violations on write ----------------------------------------------------------


def duplicate_value(
    exc: sa.exc.IntegrityError, model_name: str, table_name: str, specs: Sequence[IndexSpec]
) -> DuplicateValue | None:
    """The `DuplicateValue` a unique index's violation means; None when `exc` is another
    integrity error (a primary key, an idempotency key), for the caller to handle."""
    unique = [spec for spec in specs if spec.unique]
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint is not None:
        for spec in unique:
            if spec.name_on(table_name) == constraint:
                return _duplicate(model_name, spec.fields)
        return None
    # SQLite: "UNIQUE constraint failed: dmr_r_x.email, dmr_r_x.region"
    message = str(exc.orig)
    if not message.startswith("UNIQUE constraint failed: "):
        return None
    named = tuple(
        part.strip().split(".", 1)[-1]
        for part in message.removeprefix("UNIQUE constraint failed: ").split(",")
    )
    for spec in unique:
        if spec.fields == named:
            return _duplicate(model_name, spec.fields)
    return None


def duplicate_error(model_name: str, fields: tuple[str, ...]) -> DuplicateValue:
    """The `DuplicateValue` of a write that repeats a stored value of unique `fields` (an
    import keeps it as a rejected row's error)."""
    return _duplicate(model_name, fields)


def _duplicate(
    model_name: str, fields: tuple[str, ...], *, existing_rows: bool = False
) -> DuplicateValue:
    names = ", ".join(repr(f) for f in fields)
    what = f"field {names}" if len(fields) == 1 else f"fields {names} together"
    if existing_rows:
        message = (
            f"Model {model_name!r} cannot have a unique index on {what}: stored records "
            "already repeat a value there."
        )
    else:
        message = f"Another record of {model_name!r} already has this value in {what}."
    return DuplicateValue(message, model=model_name, fields=list(fields))
