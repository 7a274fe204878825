"""Model definitions in the shared database: the source of truth for every process.

A definition is stored as JSON Schema with its version, operation mode, permissions (masks by
name), UI overrides and provenance, and each change is kept in the history table. Every change
bumps the registry version, which is what `Catalog.state_version` reads: one primary-key
lookup tells a process whether its cache is stale (Invariant 2).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Connection

from .audit import AuditEntry, AuditLogger, Clock
from .database import Database
from .errors import InvalidName, SchemaIncompatible
from .names import SYSTEM_COLUMNS, table_name_for
from .permissions import ModelPermissions
from .query.indexes import IndexSpec, declared_indexes, refuse_duplicates, sync_indexes
from .records import RecordTable
from .schema import SchemaDiff, diff_schemas, model_from_schema
from .settings import ModelsSettings
from .tables import model_history, models, registry_state

__all__ = ["Catalog", "ModelEntry", "OperationMode"]


class OperationMode(enum.Enum):
    CRUD = "crud"
    CQRS = "cqrs"
    HYBRID = "hybrid"


@dataclass
class ModelEntry:
    """A registered model as one process holds it."""

    name: str
    version: int
    model: type[BaseModel]
    schema: dict[str, Any]
    operation_mode: OperationMode
    permissions: ModelPermissions
    records: RecordTable
    ui_overrides: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def known_fields(self) -> frozenset[str]:
        """The fields records of this model have now, system columns included: what history
        and stored results may show to roles that are not unmasked."""
        return frozenset(self.records.field_names) | SYSTEM_COLUMNS

    @functools.cached_property
    def indexes(self) -> list[IndexSpec]:
        """The indexes its schema declares (and the default order's); raises `InvalidIndex`."""
        return declared_indexes(self.name, self.schema, self.records.field_types)

    @functools.cached_property
    def index_columns(self) -> tuple[tuple[str, ...], ...]:
        """Each index's columns in key order (what a list asks of them)."""
        return tuple(spec.columns for spec in self.indexes)

    def describe(self) -> dict[str, Any]:
        """JSON summary, as `registry.list_models` returns it."""
        return {
            "name": self.name,
            "version": self.version,
            "operation_mode": self.operation_mode.value,
            "fields": self.records.field_names,
            "schema": self.schema,
            "permissions": self.permissions.to_dict(),
            "ui_overrides": self.ui_overrides,
            "provenance": self.provenance,
            "indexes": [
                spec.describe(self.records.table.name) for spec in self.indexes if not spec.system
            ],
        }


class Catalog:
    """Reads and writes model definitions, and changes record tables to match them."""

    def __init__(
        self, database: Database, settings: ModelsSettings, clock: Clock, audit: AuditLogger
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.audit = audit

    def state_version(self, conn: Connection) -> int:
        # This runs before nearly every operation, and costs more through SQLAlchemy's
        # execution machinery than in the database: ask the driver directly, on the same
        # connection and so in the same transaction.
        driver = conn.connection.dbapi_connection
        assert driver is not None
        row = driver.execute("SELECT version FROM dmr_registry_state WHERE id = 1").fetchone()
        return int(row[0])

    def load_rows(self, conn: Connection) -> dict[str, Mapping[Any, Any]]:
        return {row["name"]: row for row in conn.execute(sa.select(models)).mappings()}

    def entry_from_row(self, row: Mapping[Any, Any]) -> ModelEntry:
        model = model_from_schema(row["name"], row["schema"])
        return ModelEntry(
            name=row["name"],
            version=row["version"],
            model=model,
            schema=row["schema"],
            operation_mode=OperationMode(row["operation_mode"]),
            permissions=self.permissions_from_dict(row["name"], row["permissions"]),
            records=RecordTable.for_model(row["name"], model),
            ui_overrides=dict(row["ui_overrides"]),
            provenance=dict(row["provenance"]),
        )

    def permissions_from_dict(self, name: str, data: Mapping[str, Any] | None) -> ModelPermissions:
        return ModelPermissions.from_dict(
            name, data, self.settings.permissions, self.settings.unmasked_roles
        )

    def register(
        self, conn: Connection, entry: ModelEntry, *, force: bool, user_id: str | None
    ) -> tuple[ModelEntry, bool]:
        """Store a new or changed definition and alter its table to match.

        Returns the stored entry and whether anything changed. Raises `SchemaIncompatible`
        when the stored columns would change incompatibly and `force` is False.
        """
        indexes = entry.indexes  # a malformed declaration is refused before anything is done
        self.lock_state(conn)
        stored = self.stored(conn, entry.name)
        if stored is not None and self._unchanged(stored, entry):
            return replace(entry, version=stored["version"]), False
        old_schema = stored["schema"] if stored is not None else None
        self.apply_table_change(
            conn, entry.records, old_schema, entry.schema, force=force, user_id=user_id
        )
        refuse_duplicates(conn, entry.name, entry.records.table, indexes)
        return self._save(conn, entry, stored, "register" if stored is None else "update", user_id)

    def sync_indexes(self, entry: ModelEntry) -> None:
        """Build, rebuild and drop the entry's table indexes to match its declaration; run
        after the registration committed (PostgreSQL builds them concurrently, outside any
        transaction). Raises `DuplicateValue` when a unique index meets repeated values."""
        sync_indexes(self.database, entry.name, entry.records.table, entry.indexes)

    def update_permissions(
        self, conn: Connection, entry: ModelEntry, permissions: ModelPermissions,
        *, user_id: str | None,
    ) -> ModelEntry:
        """Store new permissions for a registered model; returns the entry at its new version."""
        self.lock_state(conn)
        stored = self.stored(conn, entry.name)
        changed = replace(entry, permissions=permissions)
        return self._save(conn, changed, stored, "permissions", user_id)[0]

    def _save(
        self,
        conn: Connection,
        entry: ModelEntry,
        stored: Mapping[Any, Any] | None,
        change: str,
        user_id: str | None,
    ) -> tuple[ModelEntry, bool]:
        self._bump_state(conn)
        saved = replace(entry, version=1 if stored is None else stored["version"] + 1)
        values = self._row_values(saved, user_id)
        if stored is None:
            conn.execute(sa.insert(models).values(created_at=values["updated_at"], **values))
        else:
            conn.execute(sa.update(models).where(models.c.name == entry.name).values(**values))
        self._write_history(conn, saved, change, user_id)
        return saved, True

    def _unchanged(self, stored: Mapping[Any, Any], entry: ModelEntry) -> bool:
        return bool(
            stored["schema"] == entry.schema
            and stored["operation_mode"] == entry.operation_mode.value
            and stored["permissions"] == entry.permissions.to_dict()
            and stored["ui_overrides"] == entry.ui_overrides
            and stored["provenance"] == entry.provenance
        )

    def lock_state(self, conn: Connection) -> None:
        """Hold the registry version row until commit, so registrations run one at a time."""
        query = sa.select(registry_state.c.version).where(registry_state.c.id == 1)
        conn.execute(self.database.for_update(query))

    def stored(self, conn: Connection, name: str) -> Mapping[Any, Any] | None:
        """The stored row of a model, locked until commit on PostgreSQL; None if there is none."""
        return self._stored_row(conn, name)

    def apply_table_change(
        self,
        conn: Connection,
        new: RecordTable,
        old_schema: Mapping[str, Any] | None,
        new_schema: Mapping[str, Any],
        *,
        force: bool,
        user_id: str | None = None,
    ) -> SchemaDiff | None:
        """Create the table, or alter it to the new schema. Raises `SchemaIncompatible`.

        Values a change adds (defaults filled into existing rows) or takes away (columns
        dropped or retyped under `force`) are audited per record, as operation "migrate",
        in the same transaction (Invariant 1)."""
        self.database.check_table_width(new.model_name, new.table, len(new.field_names))
        if old_schema is None:
            new.table.create(conn, checkfirst=True)
            return None
        diff = diff_schemas(old_schema, new_schema)
        if not diff.is_additive and not force:
            raise SchemaIncompatible(
                f"Model {new.model_name!r} cannot change this way without force=True: "
                f"{diff.describe()}.",
                model=new.model_name,
                difference=diff.describe(),
            )
        old = RecordTable.for_model(new.model_name, model_from_schema(new.model_name, old_schema))
        if not force:
            _refuse_rows_the_new_model_rejects(conn, old, new, list(diff.changed))
        retyped = _columns_that_change_type(conn, old, new, diff)
        lost = self._values_of(conn, old, [*diff.removed, *retyped])
        self._alter_columns(conn, new.table.name, new, diff.removed, diff.added, retyped)
        filled = self._fill_defaults(conn, new, [*diff.added, *retyped])
        self._audit_migration(conn, new, lost, filled, diff.removed, user_id)
        return diff

    def _alter_columns(
        self,
        conn: Connection,
        table_name: str,
        new: RecordTable,
        removed: tuple[str, ...],
        added: tuple[str, ...],
        retyped: list[str],
    ) -> None:
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table(table_name) as batch:
            for name in [*removed, *retyped]:
                batch.drop_column(name)
        with ops.batch_alter_table(table_name) as batch:
            for name in [*added, *retyped]:
                batch.add_column(sa.Column(name, new.table.c[name].type, nullable=True))

    def _values_of(
        self, conn: Connection, old: RecordTable, names: list[str]
    ) -> dict[str, dict[str, Any]]:
        """record id -> {field: value as a read gave it} for the fields about to be lost."""
        if not names:
            return {}
        rows = conn.execute(sa.select(old.table)).mappings()
        return {
            row["id"]: {name: record[name] for name in names}
            for row in rows
            for record in (old.to_record(row),)
        }

    def _fill_defaults(
        self, conn: Connection, new: RecordTable, names: list[str]
    ) -> dict[str, Any]:
        """Give rows stored before a field existed its default, so they still validate;
        returns the defaults filled, as records show them."""
        defaults: dict[str, Any] = {}
        for name in names:
            info = new.model.model_fields[name]
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            if default is not None:
                defaults[name] = new.to_column_value(name, default)
        if defaults:
            conn.execute(sa.update(new.table).values(**defaults))
        return {name: to_jsonable_python(value) for name, value in defaults.items()}

    def _audit_migration(
        self,
        conn: Connection,
        new: RecordTable,
        lost: Mapping[str, Mapping[str, Any]],
        filled: Mapping[str, Any],
        removed: tuple[str, ...],
        user_id: str | None,
    ) -> None:
        if not lost and not filled:
            return
        ids = lost.keys() if lost else conn.execute(sa.select(new.table.c.id)).scalars().all()
        now = self.clock()
        entries = []
        for record_id in ids:
            changes = {
                name: {"old": value, "new": filled.get(name)}
                for name, value in lost.get(record_id, {}).items()
            }
            for name, value in filled.items():
                changes.setdefault(name, {"old": None, "new": value})
            entries.append(
                AuditEntry(
                    model_name=new.model_name, record_id=record_id, operation="migrate",
                    user_id=user_id, timestamp=now, changes=changes,
                    metadata={"removed": list(removed)},
                )
            )
        self.audit.append(conn, entries)

    def _bump_state(self, conn: Connection) -> int:
        result = conn.execute(
            sa.update(registry_state)
            .where(registry_state.c.id == 1)
            .values(version=registry_state.c.version + 1)
            .returning(registry_state.c.version)
        )
        return int(result.scalar_one())

    def _stored_row(self, conn: Connection, name: str) -> Mapping[Any, Any] | None:
        query = self.database.for_update(sa.select(models).where(models.c.name_key == name.lower()))
        row = conn.execute(query).mappings().first()
        if row is not None and row["name"] != name:
            raise InvalidName(
                f"Model name {name!r} differs only in case from the registered model "
                f"{row['name']!r}; names are unique regardless of case.",
                name=name,
            )
        return row

    def _row_values(self, entry: ModelEntry, user_id: str | None) -> dict[str, Any]:
        return {
            "name": entry.name,
            "name_key": entry.name.lower(),
            "table_name": table_name_for(entry.name),
            "version": entry.version,
            "schema": entry.schema,
            "operation_mode": entry.operation_mode.value,
            "permissions": entry.permissions.to_dict(),
            "ui_overrides": entry.ui_overrides,
            "provenance": entry.provenance,
            "updated_at": self.clock(),
            "updated_by": user_id,
        }

    def _write_history(
        self, conn: Connection, entry: ModelEntry, change: str, user_id: str | None
    ) -> None:
        values = self._row_values(entry, user_id)
        conn.execute(
            sa.insert(model_history).values(
                name=entry.name,
                version=entry.version,
                change=change,
                schema=values["schema"],
                operation_mode=values["operation_mode"],
                permissions=values["permissions"],
                ui_overrides=values["ui_overrides"],
                provenance=values["provenance"],
                changed_at=values["updated_at"],
                changed_by=user_id,
            )
        )

    def history(self, conn: Connection, name: str) -> list[dict[str, Any]]:
        query = (
            sa.select(model_history)
            .where(model_history.c.name == name)
            .order_by(model_history.c.version)
        )
        return [dict(row) for row in conn.execute(query).mappings()]



def _columns_that_change_type(
    conn: Connection, old: RecordTable, new: RecordTable, diff: SchemaDiff
) -> list[str]:
    """Changed fields whose column must be replaced: its SQL type differs. A field that only
    became required or got other constraints keeps its column and its values."""
    dialect = conn.dialect
    return [
        name
        for name in diff.changed
        if name in old.field_types
        and name in new.field_types
        and old.table.c[name].type.compile(dialect) != new.table.c[name].type.compile(dialect)
    ]


#: Stored records named in the message when a change would leave some invalid.
_EXAMPLES = 3


def _refuse_rows_the_new_model_rejects(
    conn: Connection, old: RecordTable, new: RecordTable, changed: list[str]
) -> None:
    """A change the schemas call additive can still tighten a constraint (a shorter
    max_length, a higher minimum): refuse it, without force, when stored values break it,
    or every later update of those records would fail on fields it does not touch."""
    names = [name for name in changed if name in old.field_types and name in new.field_types]
    if not names:
        return
    fields = new.model.model_fields
    # Annotated[...] built at run time is a value, not a type, to mypy: hence Any.
    constrained: dict[str, Any] = {
        name: Annotated[fields[name].annotation, fields[name]] for name in names
    }
    adapters = {name: TypeAdapter[Any](form) for name, form in constrained.items()}
    columns = [old.table.c.id, *(old.table.c[name] for name in names)]
    failures: list[str] = []
    count = 0
    for row in conn.execute(sa.select(*columns)).mappings():
        for name, adapter in adapters.items():
            try:
                adapter.validate_python(row[name])
            except ValidationError as exc:
                count += 1
                if len(failures) < _EXAMPLES:
                    failures.append(f"record {row['id']!r}, {name}: {exc.errors()[0]['msg']}")
    if count:
        raise SchemaIncompatible(
            f"Model {new.model_name!r} cannot change this way without force=True: {count} "
            f"stored value(s) would not validate ({'; '.join(failures)}).",
            model=new.model_name,
            invalid_values=count,
        )
