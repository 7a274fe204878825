"""Projections: tables kept up to date from the event stream.

The **default projection** of a model is its record table (`RecordProjection`): each event
carries the aggregate's whole state, so applying a batch writes each aggregate's last state
(or deletes it), guarded by version so that nothing older overwrites anything newer.

A **declared projection** (`GroupedProjection`) is a definition stored in the catalog:

    {"name": "sales_by_category", "model": "Order", "group_by": ["category"],
     "measures": {"orders": ["count"], "revenue": ["sum", "amount"]},
     "filter": {"status": "paid"}}

It is two real tables. The member table holds, per aggregate that passes the filter, its
group key and the values its measures use; the group table holds one row per group with the
measures. A batch of events moves aggregates between groups by comparing their member rows
before and after: counts, sums and averages change by the difference; a minimum or maximum
that loses its extreme value is recomputed from the group's member rows (an indexed read of
one group), so deletes and group moves stay exact without keeping every value's count.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.engine import Connection

from ..catalog import ModelEntry
from ..errors import InvalidProjection, UnknownField
from ..names import SYSTEM_COLUMNS
from ..records import RecordTable, column_type_for
from ..records.table import canonical_decimal
from ..tables import as_utc
from ..types import FieldKind
from .bulk import delete_keys, insert_rows, select_keys, upsert_newer
from .events import AppliedEvent

__all__ = [
    "MEASURE_FUNCTIONS",
    "GroupedProjection",
    "ProjectionDefinition",
    "RecordProjection",
    "default_projection_name",
]

MEASURE_FUNCTIONS = ("count", "sum", "min", "max", "avg")
#: Most group keys a projection remembers the text of.
_REMEMBERED_KEYS = 10_000
_NUMERIC = frozenset({FieldKind.INTEGER, FieldKind.FLOAT, FieldKind.DECIMAL})
_IDENTIFIER = r"^[a-z][a-z0-9_]*$"
#: Longest projection name: its member table `dmr_pm_<name>` must fit PostgreSQL's 63 bytes.
MAX_PROJECTION_NAME = 40


def default_projection_name(model: str) -> str:
    """The checkpoint name of a model's default projection (its record table)."""
    return f"records:{model}"


class ProjectionDefinition(BaseModel):
    """A declared projection as stored in the catalog."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_IDENTIFIER, max_length=MAX_PROJECTION_NAME)
    model: str = Field(min_length=1, max_length=64)
    group_by: list[str] = Field(default_factory=list, max_length=8)
    measures: dict[str, list[str]] = Field(min_length=1, max_length=32)
    filter: dict[str, Any] | None = None

    @classmethod
    def parse(cls, data: Any) -> ProjectionDefinition:
        """Raises `InvalidProjection` naming each problem of a malformed definition."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
            summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(definition)'}: {e['msg']}"
                                for e in errors)
            raise InvalidProjection(
                f"The projection definition is malformed: {summary}.", errors=errors
            ) from None

    def measure_specs(self) -> dict[str, Measure]:
        return {name: Measure.parse(self.name, name, spec) for name, spec in self.measures.items()}


@dataclass(frozen=True)
class Measure:
    name: str
    function: str
    #: None for a count of records.
    field: str | None

    @classmethod
    def parse(cls, projection: str, name: str, spec: Any) -> Measure:
        import re

        if not re.fullmatch(_IDENTIFIER, name) or len(name) > MAX_PROJECTION_NAME:
            raise _invalid(projection, ["measures", name],
                           f"measure name {name!r} must be a lower-case identifier")
        if not isinstance(spec, list) or not spec or spec[0] not in MEASURE_FUNCTIONS:
            raise _invalid(projection, ["measures", name],
                           f"measure {name!r} must be [function] or [function, field] with "
                           f"function one of {', '.join(MEASURE_FUNCTIONS)}")
        function = spec[0]
        if function == "count" and len(spec) == 1:
            return cls(name, function, None)
        if len(spec) != 2 or not isinstance(spec[1], str):
            raise _invalid(projection, ["measures", name],
                           f"measure {name!r} must name one field: [{function!r}, field]")
        return cls(name, function, spec[1])


def _invalid(projection: str, loc: list[Any], message: str) -> InvalidProjection:
    return InvalidProjection(
        f"Projection {projection!r}: {message}.",
        projection=projection,
        errors=[{"loc": loc, "msg": message, "type": "projection"}],
    )


# -- the default projection ------------------------------------------------------------------


class RecordProjection:
    """A model's record table, written from events' states."""

    def __init__(self, entry: ModelEntry, table: sa.Table | None = None) -> None:
        self.entry = entry
        self.records = entry.records
        self.table = table if table is not None else entry.records.table
        self.columns = StateColumns(entry)

    def apply(self, conn: Connection, events: Sequence[AppliedEvent]) -> None:
        self.apply_last(conn, last_event_per_aggregate(events))

    def apply_last(self, conn: Connection, last: Mapping[str, AppliedEvent]) -> None:
        """Write each aggregate's state after its last event of a batch (or delete it)."""
        gone = [agg for agg, event in last.items() if event.is_deletion]
        delete_keys(conn, self.table.c.id, gone)
        rows = [self.row_of(event) for event in last.values()
                if not event.is_deletion and event.state is not None]
        upsert_newer(conn, self.table, rows, kept=("created_at", "created_by"))

    def row_of(self, event: AppliedEvent) -> dict[str, Any]:
        """The table row for the state after `event`, new fields filled with their defaults."""
        state = event.state or {}
        return {
            "id": event.aggregate_id,
            "version": event.version,
            "created_at": _stamp(state.get("created_at"), event.timestamp),
            "updated_at": _stamp(state.get("updated_at"), event.timestamp),
            "created_by": state.get("created_by"),
            "updated_by": state.get("updated_by"),
            **self.columns.of(event),
        }


_TIME = TypeAdapter(datetime.datetime)


def _stamp(value: Any, fallback: datetime.datetime) -> datetime.datetime:
    if value is None:
        return fallback
    try:
        return as_utc(datetime.datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return _TIME.validate_python(value)


class StateColumns:
    """Column values of events' states.

    A state was validated by the model when its event was written, and holds each field in
    its JSON form, so an event written under the model's current version is converted field
    by field (a date from its ISO text, a decimal from its digits) without validating the
    whole state again, which would cost more than everything else the projector does. An
    event from an older version, or a state the direct conversion cannot read, goes through
    the model (`field_columns`), which also fills the defaults of fields added since."""

    def __init__(self, entry: ModelEntry, fields: Iterable[str] | None = None) -> None:
        """`fields`: the fields a caller needs (all when None); only the model's slow path
        gives the others too."""
        self.records = entry.records
        self.version = entry.version
        places = entry.records.decimal_places
        wanted = set(entry.records.field_types if fields is None else fields)
        converters = [
            (name, _json_to_column(ftype.kind, places.get(name)))
            for name, ftype in entry.records.field_types.items() if name in wanted
        ]
        #: Fields stored as their JSON form (strings, booleans, ...), and the others.
        self.plain = [name for name, convert in converters if convert is _identity]
        self.converted = [(name, convert) for name, convert in converters
                          if convert is not _identity]

    def of(self, event: AppliedEvent) -> dict[str, Any]:
        state = event.state or {}
        if event.schema_version == self.version:
            values = {name: state.get(name) for name in self.plain}
            try:
                for name, convert in self.converted:
                    value = state.get(name)
                    values[name] = None if value is None else convert(value)
            except (TypeError, ValueError, ArithmeticError):
                pass
            else:
                return values
        return field_columns(self.records, state)


def _identity(value: Any) -> Any:
    return value


def _json_to_column(kind: FieldKind, places: int | None) -> Callable[[Any], Any]:
    """How a field's JSON form in a state becomes its column value (as `column_values`
    gives for the validated value)."""
    if kind is FieldKind.FLOAT:
        return float
    if kind is FieldKind.DECIMAL:
        return lambda value: canonical_decimal(decimal.Decimal(str(value)), places)
    if kind is FieldKind.DATE:
        return datetime.date.fromisoformat
    if kind is FieldKind.DATETIME:
        return lambda value: as_utc(datetime.datetime.fromisoformat(value))
    if kind is FieldKind.TIME:
        return datetime.time.fromisoformat
    if kind is FieldKind.UUID:
        return uuid.UUID
    if kind is FieldKind.INTEGER:
        return _integer
    return _identity  # strings, booleans, choices and JSON are stored as their JSON form


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def field_columns(records: RecordTable, state: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of a state's fields, validated by the current model: a state written
    under an older schema gets the defaults of fields added since (schema evolution)."""
    fields = {name: value for name, value in state.items() if name not in SYSTEM_COLUMNS}
    fields = {name: value for name, value in fields.items() if name in records.field_types}
    try:
        instance = records.model.model_validate(fields)
    except ValidationError:
        # A forced, incompatible schema change: keep what the columns can take as it is.
        return {name: fields.get(name) for name in records.field_types}
    return records.column_values(instance)


# -- declared projections --------------------------------------------------------------------


@dataclass
class _GroupDelta:
    values: dict[str, Any]
    count: int = 0
    sums: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    added: dict[str, list[Any]] = field(default_factory=dict)
    removed: dict[str, list[Any]] = field(default_factory=dict)


class GroupedProjection:
    """A declared projection's group table and member table, and how events change them."""

    def __init__(
        self,
        definition: ProjectionDefinition,
        entry: ModelEntry,
        *,
        suffix: str = "",
    ) -> None:
        self.definition = definition
        self.entry = entry
        self.measures = definition.measure_specs()
        self._check_against(entry)
        self.filter = self._typed_filter(entry)
        self.group_fields = list(definition.group_by)
        self.measured_fields = sorted({m.field for m in self.measures.values() if m.field})
        self.columns = StateColumns(
            entry, [*self.group_fields, *self.measured_fields, *self.filter]
        )
        self._keys: dict[tuple[Any, ...], str] = {}
        metadata = sa.MetaData()
        self.groups = sa.Table(
            f"dmr_p_{definition.name}{suffix}", metadata, *self._group_columns()
        )
        self.members = sa.Table(
            f"dmr_pm_{definition.name}{suffix}", metadata, *self._member_columns(),
            sa.Index(f"ix_dmr_pm_{definition.name}{suffix}_key", "dmr_key"),
        )

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def tables(self) -> list[sa.Table]:
        return [self.groups, self.members]

    # -- checks ------------------------------------------------------------------------

    def _check_against(self, entry: ModelEntry) -> None:
        types = entry.records.field_types
        name = self.definition.name
        named = [*self.definition.group_by, *(m.field for m in self.measures.values() if m.field),
                 *(self.definition.filter or {})]
        unknown = sorted({f for f in named if f not in types})
        if unknown:
            raise UnknownField(
                f"Projection {name!r}: model {entry.name!r} has no field "
                f"{', '.join(map(repr, unknown))}.",
                model=entry.name, projection=name, fields=unknown,
                errors=[{"loc": [f], "msg": "Unknown field", "type": "unknown_field"}
                        for f in unknown],
            )
        clash = sorted(set(self.definition.group_by) & set(self.measures))
        if clash:
            raise _invalid(name, ["measures", clash[0]],
                           f"measure {clash[0]!r} has the name of a group field")
        if len(set(self.definition.group_by)) != len(self.definition.group_by):
            raise _invalid(name, ["group_by"], "a field is grouped by twice")
        for group_field in self.definition.group_by:
            if types[group_field].kind is FieldKind.JSON:
                raise _invalid(name, ["group_by", group_field],
                               f"field {group_field!r} holds JSON and cannot be a group key")
        for measure in self.measures.values():
            if measure.function == "count" or measure.field is None:
                continue
            kind = types[measure.field].kind
            if kind not in _NUMERIC:
                raise _invalid(
                    name, ["measures", measure.name],
                    f"{measure.function} of field {measure.field!r} needs a number, and the "
                    f"field holds {kind.value}",
                )

    def _typed_filter(self, entry: ModelEntry) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        for name, value in (self.definition.filter or {}).items():
            if entry.records.field_types[name].kind is FieldKind.JSON:
                raise _invalid(self.name, ["filter", name],
                               f"field {name!r} holds JSON and cannot be filtered by equality")
            annotation: Any = entry.model.model_fields[name].annotation
            try:
                parsed = TypeAdapter(annotation).validate_python(value)
            except ValidationError:
                raise _invalid(
                    self.name, ["filter", name],
                    f"filter value for {name!r} is not a valid value of the field",
                ) from None
            typed[name] = entry.records.to_column_value(name, parsed)
        return typed

    # -- tables ------------------------------------------------------------------------

    def _field_column(self, name: str, column_name: str | None = None) -> sa.Column[Any]:
        ftype = self.entry.records.field_types[name]
        return sa.Column(column_name or name, column_type_for(ftype), nullable=True)

    def _group_columns(self) -> list[sa.Column[Any]]:
        columns: list[sa.Column[Any]] = [
            sa.Column("dmr_key", sa.Text, primary_key=True),
            sa.Column("dmr_count", sa.BigInteger, nullable=False),
        ]
        columns += [self._field_column(name) for name in self.definition.group_by]
        for measure in self.measures.values():
            columns += self._measure_columns(measure)
        return columns

    def _measure_columns(self, measure: Measure) -> list[sa.Column[Any]]:
        if measure.function == "count":
            return [sa.Column(measure.name, sa.BigInteger, nullable=False)]
        assert measure.field is not None
        if measure.function in ("min", "max", "sum"):
            return [self._field_column(measure.field, measure.name)]
        return [  # avg: the value, and the sum and count it comes from
            sa.Column(measure.name, sa.Double, nullable=True),
            self._field_column(measure.field, f"dmr_sum_{measure.name}"),
            sa.Column(f"dmr_n_{measure.name}", sa.BigInteger, nullable=False),
        ]

    def _member_columns(self) -> list[sa.Column[Any]]:
        return [
            sa.Column("aggregate_id", sa.String(64), primary_key=True),
            sa.Column("dmr_key", sa.Text, nullable=False),
            *[self._field_column(name, f"f_{name}") for name in self.group_fields],
            *[self._field_column(name, f"m_{name}") for name in self.measured_fields],
        ]

    def create(self, conn: Connection) -> None:
        for table in self.tables:
            table.create(conn, checkfirst=True)

    def drop(self, conn: Connection) -> None:
        for table in self.tables:
            table.drop(conn, checkfirst=True)

    # -- applying events ---------------------------------------------------------------

    def member_of(self, event: AppliedEvent) -> dict[str, Any] | None:
        """The member row of an aggregate after `event`; None when it is not a member."""
        if event.is_deletion or event.state is None:
            return None
        values = self.columns.of(event)
        if any(values.get(name) != wanted for name, wanted in self.filter.items()):
            return None
        group = {name: values.get(name) for name in self.group_fields}
        return {
            "dmr_key": self._group_key(group),
            **{f"f_{name}": group[name] for name in self.group_fields},
            **{f"m_{name}": values.get(name) for name in self.measured_fields},
        }

    def _group_key(self, group: Mapping[str, Any]) -> str:
        """The group's key text, remembered per value tuple (groups are few, members many)."""
        values = tuple(group.values())
        try:
            key = self._keys.get(values)
        except TypeError:  # an unhashable value
            return _group_key(group)
        if key is None:
            key = _group_key(group)
            if len(self._keys) < _REMEMBERED_KEYS:
                self._keys[values] = key
        return key

    def apply(self, conn: Connection, events: Sequence[AppliedEvent]) -> None:
        self.apply_last(conn, last_event_per_aggregate(events))

    def apply_last(self, conn: Connection, last: Mapping[str, AppliedEvent]) -> None:
        """Move each aggregate of a batch from its stored member row to the one its last
        event gives, and change the groups by the difference."""
        if not last:
            return
        old = self._stored_members(conn, list(last))
        new = {agg: self.member_of(event) for agg, event in last.items()}
        changed = [agg for agg in last if old.get(agg) != new[agg]]
        if not changed:
            return
        deltas: dict[str, _GroupDelta] = {}
        for agg in changed:
            before, after = old.get(agg), new[agg]
            if before is not None:
                self._account(deltas, before, -1)
            if after is not None:
                self._account(deltas, after, +1)
        delete_keys(conn, self.members.c.aggregate_id, [agg for agg in changed if agg in old])
        insert_rows(conn, self.members, [{"aggregate_id": agg, **member} for agg in changed
                                         if (member := new[agg]) is not None])
        self._apply_deltas(conn, deltas)

    def _stored_members(self, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for row in select_keys(conn, sa.select(self.members), self.members.c.aggregate_id, ids):
            member = dict(row)
            found[member.pop("aggregate_id")] = member
        return found

    def _account(
        self, deltas: dict[str, _GroupDelta], member: Mapping[str, Any], sign: int
    ) -> None:
        key = member["dmr_key"]
        delta = deltas.get(key)
        if delta is None:
            group = {name: member[f"f_{name}"] for name in self.group_fields}
            delta = deltas[key] = _GroupDelta(values=group)
        delta.count += sign
        for measure in self.measures.values():
            if measure.field is None:
                continue
            value = member[f"m_{measure.field}"]
            if value is None:
                continue
            delta.counts[measure.name] = delta.counts.get(measure.name, 0) + sign
            if measure.function in ("sum", "avg"):
                delta.sums[measure.name] = delta.sums.get(measure.name, 0) + sign * value
            elif measure.function in ("min", "max"):
                side = delta.added if sign > 0 else delta.removed
                side.setdefault(measure.name, []).append(value)

    def _apply_deltas(self, conn: Connection, deltas: dict[str, _GroupDelta]) -> None:
        current = self._stored_groups(conn, list(deltas))
        inserts, updates, emptied = [], [], []
        for key, delta in deltas.items():
            before = current.get(key)
            row = self._next_group_row(key, delta, before)
            if row["dmr_count"] <= 0:
                if before is not None:
                    emptied.append(key)
            elif before is None:
                inserts.append(row)
            else:
                updates.append(row)
        delete_keys(conn, self.groups.c.dmr_key, emptied)
        insert_rows(conn, self.groups, inserts)
        if updates:
            self._recompute_extremes(conn, updates, deltas, current)
            columns = [c.name for c in self.groups.c if c.name != "dmr_key"]
            statement = (
                sa.update(self.groups)
                .where(self.groups.c.dmr_key == sa.bindparam("k_dmr_key"))
                .values({name: sa.bindparam(f"k_{name}") for name in columns})
            )
            conn.execute(statement, [{f"k_{k}": v for k, v in row.items()} for row in updates])

    def _stored_groups(self, conn: Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
        rows = select_keys(conn, sa.select(self.groups), self.groups.c.dmr_key, keys)
        return {row["dmr_key"]: dict(row) for row in rows}

    def _next_group_row(
        self, key: str, delta: _GroupDelta, before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"dmr_key": key, **delta.values}
        row["dmr_count"] = (before["dmr_count"] if before else 0) + delta.count
        for measure in self.measures.values():
            name = measure.name
            if measure.function == "count":
                if measure.field is None:
                    row[name] = row["dmr_count"]
                else:
                    row[name] = (before[name] if before else 0) + delta.counts.get(name, 0)
            elif measure.function == "sum":
                total = _plus(before[name] if before else None, delta.sums.get(name))
                assert measure.field is not None
                row[name] = self.entry.records.to_column_value(measure.field, total)
            elif measure.function == "avg":
                total = _plus(before[f"dmr_sum_{name}"] if before else None, delta.sums.get(name))
                count = (before[f"dmr_n_{name}"] if before else 0) + delta.counts.get(name, 0)
                row[f"dmr_sum_{name}"] = total if count else None
                row[f"dmr_n_{name}"] = count
                row[name] = float(total) / count if count else None
            else:
                row[name] = _extreme(measure.function, before[name] if before else None,
                                     delta.added.get(name, []))
        return row

    def _recompute_extremes(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        deltas: Mapping[str, _GroupDelta],
        before: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """A min or max whose value left the group is read again from the group's members."""
        for row in rows:
            key = row["dmr_key"]
            for measure in self.measures.values():
                if measure.function not in ("min", "max"):
                    continue
                removed = deltas[key].removed.get(measure.name, [])
                if before[key][measure.name] in removed:
                    assert measure.field is not None
                    column = self.members.c[f"m_{measure.field}"]
                    function = sa.func.min if measure.function == "min" else sa.func.max
                    query = sa.select(function(column)).where(self.members.c.dmr_key == key)
                    row[measure.name] = conn.execute(query).scalar_one()

    # -- reading -----------------------------------------------------------------------

    def visible_columns(self) -> list[str]:
        """What a query returns per group: the group fields and the measure names."""
        return [*self.group_fields, *self.measures]

    def fields_of(self, column: str) -> list[str]:
        """The model fields a result column reveals (a role sees it only if it may read all)."""
        if column in self.group_fields:
            return [column]
        measure = self.measures[column]
        return [measure.field] if measure.field else []

    def describe(self) -> dict[str, Any]:
        return {
            **self.definition.model_dump(),
            "table": self.groups.name,
            "columns": self.visible_columns(),
        }


def _plus(a: Any, b: Any) -> Any:
    if b is None:
        return a if a is not None else 0
    if a is None:
        return b
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        return decimal.Decimal(a) + decimal.Decimal(b)
    return a + b


def _extreme(function: str, current: Any, added: list[Any]) -> Any:
    candidates = [v for v in [current, *added] if v is not None]
    if not candidates:
        return None
    return min(candidates) if function == "min" else max(candidates)


def _group_key(group: Mapping[str, Any]) -> str:
    return json.dumps(list(group.values()), default=str, separators=(",", ":"))


def last_event_per_aggregate(events: Iterable[AppliedEvent]) -> dict[str, AppliedEvent]:
    """Each aggregate's last event of a batch (in position order): all a projection needs,
    since every event but a delete carries the aggregate's whole state."""
    return {event.aggregate_id: event for event in events}
