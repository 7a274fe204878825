"""Records rebuilt from their audit history."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from ..errors import RecordNotFound
from ..tables import as_utc
from .outbox import AuditEntry

__all__ = ["RecordFolds", "StoredRecord", "record_as_of"]


def record_as_of(
    entries: Iterable[AuditEntry], at: datetime.datetime
) -> dict[str, Any] | None:
    """A record as its history says it was at `at`, shaped as a read returns it; None before
    its creation or after its deletion. `entries` are the record's, oldest first."""
    fields: dict[str, Any] | None = None
    system: dict[str, Any] = {}
    moment = as_utc(at)
    for entry in entries:
        if as_utc(entry.timestamp) > moment:
            break
        if entry.operation == "delete":
            fields = None
            continue
        if entry.operation == "migrate":  # a schema change: values only, not a new version
            if fields is not None:
                _apply_migration(fields, entry)
            continue
        if fields is None and entry.operation != "create":
            # The record's create went with an audit block that retention purged.
            raise RecordNotFound(
                f"Record {entry.record_id!r} of {entry.model_name!r} cannot be rebuilt at that "
                "time: the start of its history was purged by retention.",
                model=entry.model_name,
                record_id=entry.record_id,
            )
        if entry.operation == "create" or fields is None:
            fields, system = {}, _created_stamp(entry)
        fields.update({name: change.get("new") for name, change in entry.changes.items()})
        system = {**system, **_updated_stamp(entry, system)}
    if fields is None:
        return None
    return {"id": system["id"], "version": system["version"], **fields,
            **{key: system[key] for key in _STAMPS}}


_STAMPS = ("created_at", "updated_at", "created_by", "updated_by")


def _apply_migration(fields: dict[str, Any], entry: AuditEntry) -> None:
    _apply_migration_changes(fields, entry.changes, entry.metadata)


def _stamp(entry: AuditEntry) -> Any:
    # The entry's time is the row's created_at / updated_at; spelled as a read spells it.
    return to_jsonable_python(as_utc(entry.timestamp))


def _created_stamp(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.record_id, "created_at": _stamp(entry), "created_by": entry.user_id}


def _updated_stamp(entry: AuditEntry, system: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": entry.metadata.get("version", system.get("version")),
        "updated_at": _stamp(entry),
        "updated_by": entry.user_id,
    }




# -- every record at once, for verification ---------------------------------------------

#: Operations whose entries carry the record's version and form its sequence.
SEQUENCED = frozenset({"create", "update", "delete"})
_SYSTEM = frozenset({"id", "version", *_STAMPS})
#: A stored record, as a read returns it unmasked: its model's name and the record.
StoredRecord = tuple[str, Mapping[str, Any]]


class _Fold:
    """One record as the entries read so far say it is."""

    __slots__ = ("complete", "created", "fields", "operation", "updated", "version")

    def __init__(self, complete: bool) -> None:
        #: Whether its history starts at its create, so that every field is known.
        self.complete = complete
        self.fields: dict[str, Any] = {}
        self.operation = ""
        self.version = 0
        #: (time, user id) of its create and of its last create, update or delete entry.
        self.created: tuple[Any, str | None] | None = None
        self.updated: tuple[Any, str | None] | None = None


class RecordFolds:
    """Folds every record's entries, in trail order, into the record they describe, then
    compares the result with what the record tables hold.

    Each record's entries must run create v1, updates v2, v3, ... and a delete at the last
    version: a removed or reordered entry breaks that. Then each stored row must equal its
    fold, field by field, version and stamps included, and every record whose history does
    not end in a delete must be stored. `purged`: retention dropped the oldest blocks, so a
    history may start after its create; only what it holds is compared then.
    """

    def __init__(self, *, purged: bool) -> None:
        self.purged = purged
        self.folds: dict[tuple[str, str], _Fold] = {}

    def add(self, entry: Mapping[str, Any]) -> dict[str, Any] | None:
        """Fold one entry (a dict with the outbox's columns, `changes` and `metadata`
        decoded); a problem report when it breaks its record's version sequence."""
        operation = entry["operation"]
        key = (entry["model"], entry["record_id"])
        if operation == "migrate":
            fold = self.folds.get(key)
            if fold is None:  # its create was purged: what the migration set is still known
                fold = self.folds[key] = _Fold(complete=False)
            _apply_migration_changes(fold.fields, entry["changes"], entry["metadata"])
            return None
        version = (entry["metadata"] or {}).get("version")
        if operation not in SEQUENCED or not isinstance(version, int):
            return None  # log_operation's own entries carry no record version
        return self._add_sequenced(key, entry, operation, version)

    def _add_sequenced(
        self, key: tuple[str, str], entry: Mapping[str, Any], operation: str, version: int
    ) -> dict[str, Any] | None:
        fold = self.folds.get(key)
        before = (fold.operation, fold.version) if fold is not None and fold.operation else None
        problem = _sequence_problem(before, operation, version, self.purged)
        if problem is not None:
            return {"ok": False, "seq": entry["seq"], "record": list(key),
                    "reason": f"Record {key[1]!r} of {key[0]!r}: {problem}"}
        if fold is None or operation == "create":
            fold = self.folds[key] = _Fold(complete=operation == "create")
        stamp = (entry["ts"], entry["user_id"])
        if operation == "create":
            fold.created = stamp
        if operation != "delete":
            fold.fields.update({name: change.get("new") for name, change in
                                entry["changes"].items()})
            fold.updated = stamp
        fold.operation, fold.version = operation, version
        return None

    def compare(self, stored: Iterable[StoredRecord]) -> dict[str, Any]:
        """Each stored record against its fold; `{"ok": True, "records": n}` or the first
        difference, naming the record and, where one differs, the field."""
        seen: set[tuple[str, str]] = set()
        for model, record in stored:
            key = (model, str(record["id"]))
            seen.add(key)
            problem = self._row_problem(key, record)
            if problem is not None:
                return {"ok": False, "record": list(key), **problem,
                        "reason": f"Record {key[1]!r} of {key[0]!r}: {problem['reason']}"}
        for key, fold in self.folds.items():
            if key not in seen and fold.operation not in ("", "delete"):
                return {"ok": False, "record": list(key),
                        "reason": f"Record {key[1]!r} of {key[0]!r}: its history ends at "
                        f"{fold.operation} v{fold.version}, but the record is gone. Entries "
                        "are missing."}
        return {"ok": True, "records": len(seen)}

    def _row_problem(
        self, key: tuple[str, str], record: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        fold = self.folds.get(key)
        if fold is None or not fold.operation:
            if self.purged:  # unchanged since its history went with retention
                return None
            return {"reason": "it is stored but has no audit entries."}
        if fold.operation == "delete":
            return {"reason": "its history ends in a delete, but the record is still stored. "
                    "Entries are missing."}
        if record["version"] != fold.version:
            return {"reason": f"it is stored at version {record['version']}, its last entry "
                    f"is version {fold.version}. Entries are missing."}
        return _value_problem(fold, record)


def _value_problem(fold: _Fold, record: Mapping[str, Any]) -> dict[str, Any] | None:
    for name, value in record.items():
        if name in _SYSTEM:
            continue
        if not (fold.complete or name in fold.fields):
            continue  # set before the purged part of its history, and not since
        expected = fold.fields.get(name)  # a field added later without a default is None
        if not _same(value, expected):
            return {"field": name, "reason": f"its field {name!r} is stored as "
                    f"{_shown(value)}, but its history says {_shown(expected)}: the row was "
                    "changed without an audit entry."}
    return _stamp_problem(fold, record)


def _stamp_problem(fold: _Fold, record: Mapping[str, Any]) -> dict[str, Any] | None:
    known = []
    if fold.created is not None:
        known += [("created_at", _stamp_of(fold.created[0])), ("created_by", fold.created[1])]
    if fold.updated is not None:
        known += [("updated_at", _stamp_of(fold.updated[0])), ("updated_by", fold.updated[1])]
    for name, expected in known:
        stored = record.get(name)
        if name.endswith("_at"):
            stored = _stamp_of(stored)
        if stored != expected:
            return {"field": name, "reason": f"its {name} is stored as {_shown(stored)}, but "
                    f"its history says {_shown(expected)}: the row was changed without an "
                    "audit entry."}
    return None


def _stamp_of(value: Any) -> Any:
    """A time as a read spells it, from a datetime or an ISO string (block entries)."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime.datetime):
        return to_jsonable_python(as_utc(value))
    return value


def _same(stored: Any, expected: Any) -> bool:
    # Equal values, or equal JSON (NaN is not equal to itself, but is to its own spelling).
    return bool(stored == expected) or _canonical(stored) == _canonical(expected)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _apply_migration_changes(
    fields: dict[str, Any], changes: Mapping[str, Any], metadata: Mapping[str, Any]
) -> None:
    removed = set((metadata or {}).get("removed", ()))
    for name, change in changes.items():
        if name in removed:
            fields.pop(name, None)
        else:
            fields[name] = change.get("new")


def _sequence_problem(
    before: tuple[str, int] | None, operation: str, version: int, purged: bool
) -> str | None:
    if before is None:
        if operation == "create":
            return None if version == 1 else f"it was created at version {version}, not 1."
        if purged:  # its older history went with retention
            return None
        return f"its first entry is {operation} at version {version}: earlier ones are missing."
    previous_operation, previous = before
    if previous_operation == "delete":
        return f"an entry ({operation}) follows its delete."
    expected = {"create": None, "update": previous + 1, "delete": previous}[operation]
    if version != expected:
        return (f"{operation} at version {version} follows version {previous}: entries are "
                "missing or out of order.")
    return None
