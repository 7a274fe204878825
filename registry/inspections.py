"""Models proposed by the inspector, registered with their provenance.

An inspection document (see `inspector.inspection`) is accepted as a mapping, its JSON text,
or an object with `model_dump` (an `inspector.Inspection`): the registry never imports the
inspector at module level (DESIGN.md layout), only inside `register_from_resource`.

Registering one stores its `json_schema` as the model and everything else (source,
field map, primary key, per-field provenance, warnings, inspector) as the model's provenance in
the catalog, under `{"source": "inspection", "inspection": {...}}`, where `list_models` shows it
and `stored_field_map` finds the field map an import uses when it is given none. Dates written
in a non-ISO format are shown in forms the way the source wrote them (a UI override of the
field's display format), unless UI overrides are given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .catalog import ModelEntry, OperationMode
from .errors import InvalidSchema
from .names import validate_model_name
from .permissions import ModelPermissions

if TYPE_CHECKING:
    from .core import DynamicModelRegistry

__all__ = [
    "inspection_document",
    "register_from_resource",
    "register_inspection",
    "stored_field_map",
    "stored_inspection",
]

PROVENANCE_SOURCE = "inspection"
_REQUIRED_KEYS = ("json_schema", "field_map", "provenance")
_DATE_TYPES = frozenset({"date", "datetime", "datetime_tz"})


def inspection_document(inspection: Any) -> dict[str, Any]:
    """The inspection as a JSON-ready dict. Raises `InvalidSchema` naming what is wrong."""
    if hasattr(inspection, "model_dump"):
        document = inspection.model_dump(mode="json")
    elif isinstance(inspection, str | bytes):
        try:
            document = json.loads(inspection)
        except json.JSONDecodeError as exc:
            raise InvalidSchema(f"The inspection is not JSON: {exc.msg}.") from None
    else:
        document = inspection
    if not isinstance(document, Mapping):
        raise InvalidSchema(f"An inspection is a JSON object, not {type(document).__name__}.")
    _check_shape(document)
    return dict(document)


def _check_shape(document: Mapping[str, Any]) -> None:
    missing = [key for key in _REQUIRED_KEYS if key not in document]
    if missing:
        raise InvalidSchema(f"The inspection lacks {missing}.", keys=missing)
    for key in _REQUIRED_KEYS:
        if not isinstance(document[key], Mapping):
            raise InvalidSchema(f"The inspection's {key!r} must be a JSON object.", key=key)
    properties = document["json_schema"].get("properties")
    if not isinstance(properties, Mapping):
        raise InvalidSchema("The inspection's json_schema has no properties.")
    fields = [*document["field_map"].values(), *document["provenance"]]
    unknown = sorted({str(name) for name in fields} - set(properties))
    if unknown:
        raise InvalidSchema(
            f"The inspection's field_map or provenance names fields {unknown} that its "
            "json_schema does not have.",
            fields=unknown,
        )


def register_inspection(
    registry: DynamicModelRegistry,
    inspection: Any,
    model_name: str | None = None,
    *,
    operation_mode: OperationMode | str = OperationMode.CRUD,
    permissions: ModelPermissions | Mapping[str, Any] | None = None,
    ui_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    user_id: str | None = None,
) -> str:
    """Register the inspection's model under `model_name` (default: its `name`); returns the
    name. Raises what `register_schema` raises, and `InvalidSchema` for a malformed document."""
    document = inspection_document(inspection)
    name = validate_model_name(model_name or document.get("name"))
    kept = {key: value for key, value in document.items() if key != "json_schema"}
    registry.register_schema(
        name,
        document["json_schema"],
        operation_mode,
        permissions=permissions,
        force=force,
        ui_overrides=ui_overrides if ui_overrides is not None else _date_displays(document),
        provenance={"source": PROVENANCE_SOURCE, "inspection": kept},
        user_id=user_id,
    )
    return name


async def register_from_resource(
    registry: DynamicModelRegistry,
    resource: Any,
    model_name: str | None = None,
    **inspect_options: Any,
) -> str:
    """Inspect `resource` (in a thread) and register the model it proposes; returns its name.

    `inspect_options` go to `inspector.inspect` (sample_rows, confidence, ...). Raises the
    inspector's errors for a resource it cannot read."""
    import inspector

    inspection = await asyncio.to_thread(inspector.inspect, resource, model_name, **inspect_options)
    # Registration runs on the caller's thread: an in-memory SQLite registry lives on one
    # connection, and the write is short.
    return register_inspection(registry, inspection, model_name)


def stored_inspection(entry: ModelEntry) -> dict[str, Any] | None:
    """The inspection a model was registered from (without its schema), or None."""
    if entry.provenance.get("source") != PROVENANCE_SOURCE:
        return None
    found = entry.provenance.get("inspection")
    return dict(found) if isinstance(found, Mapping) else None


def stored_field_map(entry: ModelEntry) -> dict[str, str] | None:
    """{source name: field} stored with the model from its inspection, or None."""
    found = stored_inspection(entry)
    return dict(found["field_map"]) if found is not None else None


def _date_displays(document: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Show dates in forms as the source wrote them ("%m/%d/%Y"), not ISO."""
    overrides = {
        field: {"format": facts["format"]}
        for field, facts in document["provenance"].items()
        if isinstance(facts, Mapping)
        and facts.get("inferred_type") in _DATE_TYPES
        and isinstance(facts.get("format"), str)
        and "%" in facts["format"]
    }
    return overrides or None
