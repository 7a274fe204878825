"""`CqrsService`: commands, projections, the projector, queries and the event feed of one
registry, wired together. The registry builds one (`registry.cqrs`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_jsonable_python

from ..audit import AuditLogger, Clock
from ..catalog import ModelEntry, OperationMode
from ..database import Database
from ..errors import (
    InvalidProjection,
    ProjectionNotFound,
    ProjectionStale,
    ValidationFailed,
)
from ..permissions import Permission, require_manager
from ..query.counts import count_mode, count_rows
from ..query.cursors import CursorCodec, cursor_key, fetch_page, query_fingerprint
from ..query.fields import ordering, table_fields
from ..query.filters import FilterField, Visibility, compile_filters
from ..query.listing import ListLimits
from ..settings import Settings
from ..tables import models as models_table
from .backfill import Backfill
from .commands import CommandRequest, load_command_modules
from .events import Event
from .execution import CommandExecutor, ModelSource, RecordRules
from .modes import WriteRouter
from .projections import GroupedProjection, ProjectionDefinition, default_projection_name
from .projector import DeclaredProjection, DefaultProjection, Projection, Projector
from .store import EventStore
from .tables import checkpoints, projection_definitions

__all__ = ["CqrsService"]

#: Seconds between looks at a projection's checkpoint while a query waits for it.
_WAIT_STEP = 0.01
#: Most events one feed call returns.
MAX_FEED_LIMIT = 1000


class CqrsService:
    def __init__(
        self,
        database: Database,
        audit: AuditLogger,
        settings: Settings,
        models: ModelSource,
        rules: RecordRules,
        clock: Clock,
    ) -> None:
        self.database = database
        self.settings = settings
        self.models = models
        self.clock = clock
        self.store = EventStore(database)
        self.executor = CommandExecutor(
            database, self.store, audit, models, rules, clock, settings.cqrs
        )
        self.projector = Projector(database, self.store, clock, settings.cqrs.projector_batch_size)
        self.writes = WriteRouter(database, models, self.executor)
        self.backfill = Backfill(database, self.store, models, clock, settings.cqrs.backfill_chunk)
        self._declared: dict[tuple[str, int, int], GroupedProjection] = {}
        models_settings = settings.models
        self.list_limits = ListLimits.from_settings(models_settings)
        # The records' cursor key: a cursor names its query, so one key serves both.
        self.cursors = CursorCodec(cursor_key(models_settings.cursor_secret, database.url))
        load_command_modules(settings.cqrs.command_modules)

    def mode_switch_starts(
        self, conn: sa.Connection, before: ModelEntry | None, after: ModelEntry
    ) -> bool:
        """In a registration's transaction: when a model with records leaves crud mode, mark
        its backfill due (the caller runs it after commit); True if one is due."""
        leaves_crud = (before is not None and before.operation_mode is OperationMode.CRUD
                       and after.operation_mode is not OperationMode.CRUD)
        if leaves_crud:
            self.backfill.start(conn, after.name)
        return leaves_crud

    # -- commands ----------------------------------------------------------------------

    def execute_command(
        self, command: CommandRequest | Mapping[str, Any], user_id: str | None, user_role: str
    ) -> dict[str, Any]:
        """Run a command; returns `{"aggregate_id", "version", "position", "events"}`."""
        outcome = self.executor.execute(CommandRequest.parse(command), user_id, user_role)
        if outcome.replayed is not None:
            return outcome.replayed
        return outcome.command_result()

    # -- projections -------------------------------------------------------------------

    def define_projection(
        self, definition: Any, *, force: bool = False, user_id: str | None = None,
        user_role: str,
    ) -> dict[str, Any]:
        """Store a declared projection and create its tables; the projector fills them from
        the first event. Redefining one that differs needs `force` (its tables are rebuilt).
        Raises `InvalidProjection`, `UnknownField`, `ModelNotFound`, `PermissionDenied`."""
        parsed = ProjectionDefinition.parse(definition)
        if not isinstance(force, bool):
            raise InvalidProjection(f"force must be true or false, not {force!r}.", errors=[])
        with self.database.write() as conn:
            entry = self.models.resolve(conn, parsed.model)
            self._require_manager(entry, user_role)
            grouped = GroupedProjection(parsed, entry)
            stored = self._stored_definition(conn, parsed.name, lock=True)
            if stored is not None:
                if ProjectionDefinition.model_validate(stored["definition"]) == parsed:
                    return grouped.describe()
                if not force:
                    raise InvalidProjection(
                        f"Projection {parsed.name!r} is already defined differently; send "
                        "force=true to replace it (its tables are rebuilt from the events).",
                        projection=parsed.name, errors=[],
                    )
                old = ProjectionDefinition.model_validate(stored["definition"])
                old_entry = self.models.resolve(conn, old.model)
                GroupedProjection(old, old_entry).drop(conn)
            grouped.create(conn)
            self._save_definition(conn, parsed, stored, user_id)
            self.projector.reset_checkpoint(conn, parsed.name)
        return grouped.describe()

    def projections(self) -> list[dict[str, Any]]:
        with self.database.read() as conn:
            rows = conn.execute(sa.select(projection_definitions)).mappings().all()
        return [dict(row["definition"]) for row in rows]

    def _require_manager(self, entry: ModelEntry, user_role: str) -> None:
        # The one management rule (registry.permissions), as for registrations.
        require_manager(user_role, self.settings.models.manager_roles,
                        f"define projections of {entry.name!r}")

    def _stored_definition(
        self, conn: sa.Connection, name: str, *, lock: bool = False
    ) -> Mapping[str, Any] | None:
        query = sa.select(projection_definitions).where(projection_definitions.c.name == name)
        if lock:
            query = self.database.for_update(query)
        found = conn.execute(query).mappings().first()
        return dict(found) if found is not None else None

    def _save_definition(
        self, conn: sa.Connection, parsed: ProjectionDefinition,
        stored: Mapping[str, Any] | None, user_id: str | None,
    ) -> None:
        now = self.clock()
        values = {"model": parsed.model, "definition": parsed.model_dump(), "updated_at": now,
                  "updated_by": user_id}
        if stored is None:
            conn.execute(sa.insert(projection_definitions).values(
                name=parsed.name, generation=1, created_at=now, **values))
        else:
            conn.execute(
                sa.update(projection_definitions)
                .where(projection_definitions.c.name == parsed.name)
                .values(generation=stored["generation"] + 1, **values)
            )

    def _declared_projection(self, conn: sa.Connection, name: str) -> GroupedProjection:
        stored = self._stored_definition(conn, name)
        if stored is None:
            raise ProjectionNotFound(f"No projection is defined as {name!r}.", projection=name)
        definition = ProjectionDefinition.model_validate(stored["definition"])
        entry = self.models.resolve(conn, definition.model)
        key = (name, stored["generation"], entry.version)
        if key not in self._declared:
            self._declared[key] = GroupedProjection(definition, entry)
        return self._declared[key]

    def _projection(self, conn: sa.Connection, name: str) -> Projection:
        """A declared projection by name, or a model's default one as `records:<Model>`."""
        if isinstance(name, str) and name.startswith("records:"):
            entry = self.models.resolve(conn, name.removeprefix("records:"))
            if entry.operation_mode is OperationMode.CRUD:
                raise ProjectionNotFound(
                    f"Model {entry.name!r} is in crud mode: its table is not a projection.",
                    projection=name,
                )
            return DefaultProjection(name, entry)
        if not isinstance(name, str):
            raise ProjectionNotFound(f"No projection is defined as {name!r}.", projection=name)
        return DeclaredProjection(self._declared_projection(conn, name))

    def _maintained(self, conn: sa.Connection) -> list[Projection]:
        """Every projection the projector keeps: default ones of cqrs models (hybrid writes
        update theirs in the write's transaction) and every declared one."""
        names = conn.execute(
            sa.select(models_table.c.name).where(models_table.c.operation_mode == "cqrs")
        ).scalars().all()
        found: list[Projection] = []
        for model in names:
            entry = self.models.resolve(conn, model)
            found.append(DefaultProjection(default_projection_name(model), entry))
        for name in conn.execute(sa.select(projection_definitions.c.name)).scalars().all():
            found.append(DeclaredProjection(self._declared_projection(conn, name)))
        return found

    # -- the projector -----------------------------------------------------------------

    def project(self) -> dict[str, int]:
        """Finish pending mode-switch backfills, then bring every projection up to the
        store's head; returns `{"events": applied}`."""
        self.backfill.resume_all()
        with self.database.read() as conn:
            projections = self._maintained(conn)
        by_model: dict[str, list[Projection]] = {}
        for projection in projections:
            by_model.setdefault(projection.model, []).append(projection)
        head = self.store.head()
        return {"events": sum(self.projector.catch_up_together(group, head)
                              for group in by_model.values())}

    def rebuild_projection(self, name: str) -> dict[str, int]:
        with self.database.read() as conn:
            projection = self._projection(conn, name)
        return self.projector.rebuild(projection)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per projection: `{"checkpoint", "head", "lag", "blocked"}`, `blocked` being None
        or, for one stopped by an event it cannot apply, `{"position", "event", "reason",
        "since"}` (see `blocks.py`)."""
        with self.database.read() as conn:
            head = self.store.last_position(conn)
            rows = conn.execute(sa.select(checkpoints)).mappings().all()
            blocked = self.projector.blocks.everything(conn)
        return {
            row["name"]: {"checkpoint": row["position"], "head": head,
                          "lag": max(0, head - row["position"]),
                          "blocked": blocked.get(row["name"])}
            for row in rows
        }

    # -- queries -----------------------------------------------------------------------

    def wait_for(
        self, projection_name: str | None, min_position: int | None, wait_seconds: float | None
    ) -> None:
        """Return once the projection has applied every event up to `min_position`; raise
        `ProjectionStale` with its lag after `wait_seconds`. A projection updated in the
        writing transaction (crud and hybrid tables) is always current."""
        if min_position is None or projection_name is None:
            return
        wait = _check_wait(min_position, wait_seconds, self.settings.cqrs.max_wait_seconds)
        deadline = time.monotonic() + wait
        with self.database.read() as conn:
            projection = self._projection(conn, projection_name)
        while True:
            with self.database.read() as conn:
                reached = self.projector.checkpoint(conn, projection_name) or 0
                head = self.store.last_position(conn)
            if reached >= min_position:
                return
            if time.monotonic() >= deadline:
                break
            # Apply it here rather than only wait: in-process use has no projector running.
            if self.projector.catch_up(projection) == 0:
                time.sleep(_WAIT_STEP)
        raise ProjectionStale(
            f"Projection {projection_name!r} is at position {reached}, short of {min_position}"
            f" after {wait} s ({head - reached} events behind).",
            projection=projection_name, position=reached, min_position=min_position,
            head=head, lag=head - reached,
        )

    def default_projection_of(self, model: str) -> str | None:
        """The projection a read of `model` must wait for; None when writes update the
        table themselves."""
        with self.database.read() as conn:
            entry = self.models.resolve(conn, model)
        if entry.operation_mode is OperationMode.CQRS:
            return default_projection_name(entry.name)
        return None

    def query_projection(
        self,
        name: str,
        user_role: str,
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int = 50,
        after: str | None = None,
        count: str | None = None,
    ) -> dict[str, Any]:
        """One page of a declared projection's groups, as the role may see them, paged and
        counted as `records.list` pages (`after`/`next_cursor`, `count`/`total_exact`, the
        same filter operators), with the group key as the tie-breaking id."""
        with self.database.read() as conn:
            grouped = self._declared_projection(conn, name)
            entry = grouped.entry
            entry.permissions.require(user_role, Permission.READ)
            visible = [c for c in grouped.visible_columns()
                       if all(entry.permissions.plainly_readable(user_role, f)
                              for f in grouped.fields_of(c))]
            table = grouped.groups
            columns = _fields_of(table)
            shown = {column: columns[column] for column in visible}

            def visibility(column: str) -> Visibility:
                return Visibility.PLAIN if column in shown or column == "id" else Visibility.HIDDEN

            what = f"projection {name}"
            conditions = compile_filters(
                filters, shown, visibility, model=what, role=user_role,
                max_values=self.list_limits.max_filter_values, dialect=conn.dialect.name,
            )
            key = replace(columns["dmr_key"], name="id")
            order = ordering(order_by, {**shown, "id": key}, visibility, model=what,
                             role=user_role, default="id")
            fingerprint = query_fingerprint(what, filters, order.spelling)
            position = None if after is None else self.cursors.decode(after, fingerprint)
            if position is not None and page != 1:
                raise ValidationFailed(
                    "Give either page or after, not both: after continues from a cursor.",
                    errors=[{"loc": ["page"], "msg": "page and after together",
                             "type": "page"}],
                )
            query = sa.select(*[table.c[c] for c in visible], table.c.dmr_key.label("id"))
            rows, more = fetch_page(
                conn, query.where(*conditions), order, position, page_size,
                offset=0 if position is not None else (page - 1) * page_size,
            )
            total = count_rows(conn, table, conditions, count_mode(count),
                               exact_limit=self.list_limits.count_exact_limit)
        items = [to_jsonable_python({c: row._mapping[c] for c in visible}) for row in rows]
        next_cursor = self.cursors.encode(fingerprint, order.position_of(rows[-1])) if more \
            else None
        return {"items": items, "page": None if position is not None else page,
                "page_size": page_size, "total": total.value, "total_exact": total.exact,
                "next_cursor": next_cursor}

    # -- the event feed ----------------------------------------------------------------

    def events(
        self, after_position: int, limit: int, model: str | None, user_role: str
    ) -> dict[str, Any]:
        """Events after `after_position`, masked for the role like history; a follower
        passes the returned `last_position` as its next `after_position`."""
        _check_feed(after_position, limit)
        with self.database.read() as conn:
            if model is not None:
                entry = self.models.resolve(conn, model)
                entry.permissions.require(user_role, Permission.READ)
                readable = {entry.name: entry}
            else:
                readable = self._readable_models(conn, user_role)
        head = self.store.head()
        with self.database.read() as conn:
            found = self.store.read(conn, after_position, head, limit, sorted(readable))
        last = found[-1].position if len(found) == limit else head
        return {
            "events": [_masked(event, readable[event.model], user_role) for event in found],
            "last_position": max(last or 0, after_position),
        }

    def _readable_models(self, conn: sa.Connection, user_role: str) -> dict[str, ModelEntry]:
        names = conn.execute(sa.select(models_table.c.name)).scalars().all()
        entries = {}
        for name in names:
            entry = self.models.resolve(conn, name)
            if entry.permissions.can_perform(user_role, Permission.READ):
                entries[name] = entry
        return entries

    def stream(self, model: str, aggregate_id: str) -> list[Event]:
        """Every event of one aggregate, unmasked (in-process use)."""
        with self.database.read() as conn:
            return self.store.stream(conn, model, aggregate_id)


def _masked(event: Event, entry: ModelEntry, user_role: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    known = entry.known_fields
    if "changes" in event.data:
        data["changes"] = entry.permissions.view_changes(event.changes, user_role, known)
    if event.state is not None:
        data["state"] = entry.permissions.view(event.state, user_role, known)
    if event.data.get("deleted"):
        data["deleted"] = True
    return {**event.to_json(), "data": data}


def _check_wait(min_position: Any, wait_seconds: Any, limit: float) -> float:
    if not isinstance(min_position, int) or isinstance(min_position, bool) or min_position < 0:
        raise ValidationFailed(
            f"min_position must be a whole number from 0, not {min_position!r}.",
            errors=[{"loc": ["min_position"], "msg": "must be an integer >= 0",
                     "type": "argument"}],
        )
    wait = 0.0 if wait_seconds is None else wait_seconds
    if (not isinstance(wait, int | float) or isinstance(wait, bool)
            or not 0 <= wait <= limit):
        raise ValidationFailed(
            f"wait_seconds must be a number from 0 to {limit}, not {wait_seconds!r}.",
            errors=[{"loc": ["wait_seconds"], "msg": f"must be 0..{limit}", "type": "argument"}],
        )
    return float(wait)


def _check_feed(after_position: Any, limit: Any) -> None:
    problems = []
    if not isinstance(after_position, int) or isinstance(after_position, bool) \
            or after_position < 0:
        problems.append(("after_position", "must be a whole number from 0"))
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_FEED_LIMIT:
        problems.append(("limit", f"must be a whole number from 1 to {MAX_FEED_LIMIT}"))
    if problems:
        raise ValidationFailed(
            "Invalid call: " + "; ".join(f"{n} {why}" for n, why in problems) + ".",
            errors=[{"loc": [n], "msg": why, "type": "argument"} for n, why in problems],
        )


@functools.lru_cache(maxsize=256)
def _fields_of(table: sa.Table) -> Mapping[str, FilterField]:
    """The filterable columns of a projection's group table (cached per table object, which
    the service keeps per projection generation)."""
    return table_fields(table)
