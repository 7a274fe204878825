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
_PAGE_KEYS = frozenset({"items", "page", "page_size", "total"})
#: A records page (`records.list`) also says how it counted and where the next one starts.
_CURSOR_PAGE_KEYS = _PAGE_KEYS | {"total_exact", "next_cursor"}
#: What a delete answers: shown whole, it holds no field value.
_DELETED_KEYS = frozenset({"id", "deleted", "version"})
_MAX_ITEMS = 20
#: Records of a page shown: Celery cuts a result's display at 1,024 characters
#: (`resultrepr_maxsize`), about four records, and builds it for every task that succeeds.
_MAX_PAGE_ITEMS = 5
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
    if isinstance(value, Mapping):
        if _has_keys(value, _PAGE_KEYS) or _has_keys(value, _CURSOR_PAGE_KEYS):
            page = {key: _plain(value[key]) for key in value if key not in ("items", "next_cursor")}
            if "next_cursor" in value:
                # A cursor carries the last row's order value: hidden like the values.
                page["next_cursor"] = None if value["next_cursor"] is None else REDACTED
            return {**page, "items": _page_items(value["items"])}
        if _has_keys(value, _DELETED_KEYS) and value["deleted"] is True:
            return {key: _plain(item) for key, item in value.items()}
        return {str(key): _result_item(str(key), item, top=top) for key, item in value.items()}
    if isinstance(value, list):
        shown = [_result_value(item, top=top) for item in value[:_MAX_ITEMS]]
        hidden = len(value) - _MAX_ITEMS
        return shown + ([f"{REDACTED} {hidden} more"] if hidden > 0 else [])
    return REDACTED


def _page_items(items: Any) -> Any:
    if not isinstance(items, list):
        return REDACTED
    shown = [_result_value(item, top=True) for item in items[:_MAX_PAGE_ITEMS]]
    hidden = len(items) - _MAX_PAGE_ITEMS
    return shown + ([f"{REDACTED} {hidden} more"] if hidden > 0 else [])


def _has_keys(value: Mapping[Any, Any], keys: frozenset[str]) -> bool:
    # Sizes first: Celery shows every task's result, a page's records included.
    return len(value) == len(keys) and value.keys() == keys


def _result_item(key: str, value: Any, *, top: bool) -> Any:
    if top and key in _PLAIN_RESULT_KEYS:
        return _plain(value)
    # Nested shapes (a model's description, audit changes) keep their keys, not their values.
    if isinstance(value, dict | list) or (
        not isinstance(value, str | int | float) and isinstance(value, Mapping)
    ):
        return _result_value(value, top=False)
    return REDACTED
