"""What Flower, the event stream and the logs may show of a task: names, never values.

Invariant 4 extends to the monitor: a role must not see a field value through a task's
arguments or result. Arguments keep their names and the field names inside them; record values
become `REDACTED`. Identifiers (model, record id, user, role, versions, paging) stay readable,
because that is what an operator looks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "arguments_repr", "result_repr"]

REDACTED = "…"
#: Arguments shown as they are (after truncation): identifiers, never record values.
_PLAIN_ARGUMENTS = frozenset({
    "model", "name", "record_id", "user_id", "user_role", "idempotency_key",
    "expected_version", "order_by", "page", "page_size", "operation_mode", "force",
    "job_id", "chunk_no", "first_row", "total", "chunk_count",
})
#: Arguments that carry record values by field name: keep the names, hide the values.
_FIELD_VALUE_ARGUMENTS = frozenset({"data", "updates", "filters"})
#: Result keys shown as they are: the columns every record has, which no field can be named.
_PLAIN_RESULT_KEYS = frozenset(
    {"id", "version", "created_at", "updated_at", "created_by", "updated_by"}
)
_PAGE_KEYS = frozenset({"items", "page", "page_size", "total", "total_exact", "next_cursor"})
#: What a delete answers: shown whole, it holds no field value.
_DELETED_KEYS = frozenset({"id", "deleted", "version"})
_MAX_ITEMS = 20
_MAX_PLAIN = 100


def arguments_repr(arguments: Mapping[str, Any]) -> str:
    """A display form of a task's keyword arguments with every record value hidden."""
    return repr({str(name): _argument(str(name), value) for name, value in arguments.items()})


def result_repr(result: Any) -> str:
    """A display form of a task's result: keys and identifiers, no field values."""
    return repr(_result_value(result))


def _argument(name: str, value: Any) -> Any:
    if name in _PLAIN_ARGUMENTS:
        return _plain(value)
    if name in _FIELD_VALUE_ARGUMENTS and isinstance(value, Mapping):
        return {str(key): REDACTED for key in value}
    if name == "schema" and isinstance(value, Mapping):
        properties = value.get("properties")
        return {"properties": sorted(properties) if isinstance(properties, Mapping) else REDACTED}
    if name == "permissions" and isinstance(value, Mapping):
        return {str(key): REDACTED for key in value}
    return REDACTED


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= _MAX_PLAIN else text[:_MAX_PLAIN] + REDACTED


def _result_value(value: Any, *, top: bool = True) -> Any:
    """`top`: a record (or a delete's answer) whose system columns may show; nested values
    never show, whatever their keys are called (a field may hold {"id": "<secret>"})."""
    if isinstance(value, Mapping) and set(value) == _PAGE_KEYS:
        # A cursor carries the last row's order value: it stays hidden like the values.
        shown = ("page", "page_size", "total", "total_exact")
        return {**{key: _plain(value[key]) for key in shown},
                "next_cursor": None if value["next_cursor"] is None else REDACTED,
                "items": _result_value(value["items"], top=True)}
    if isinstance(value, Mapping) and set(value) == _DELETED_KEYS and value["deleted"] is True:
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Mapping):
        return {str(key): _result_item(str(key), item, top=top) for key, item in value.items()}
    if isinstance(value, list):
        shown = [_result_value(item, top=top) for item in value[:_MAX_ITEMS]]
        hidden = len(value) - _MAX_ITEMS
        return shown + ([f"{REDACTED} {hidden} more"] if hidden > 0 else [])
    return REDACTED


def _result_item(key: str, value: Any, *, top: bool) -> Any:
    if top and key in _PLAIN_RESULT_KEYS:
        return _plain(value)
    # Nested shapes (a model's description, audit changes) keep their keys, not their values.
    if isinstance(value, Mapping | list):
        return _result_value(value, top=False)
    return REDACTED
