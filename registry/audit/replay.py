"""Records rebuilt from their audit history."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from ..errors import RecordNotFound
from ..tables import as_utc
from .outbox import AuditEntry

__all__ = ["record_as_of"]


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
    removed = set(entry.metadata.get("removed", ()))
    for name, change in entry.changes.items():
        if name in removed:
            fields.pop(name, None)
        else:
            fields[name] = change.get("new")


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


