"""What a task message must be before the worker's main process lets Celery build a request.

Celery decodes a message and hands its arguments to a pool child in the worker's main process;
a body of the wrong shape, JSON nested deep enough to overflow the stack while it is pickled, or
a malformed header raises there, outside any task, and stops the worker (and, with late
acknowledgement, every worker the message is redelivered to). `check_task_message` looks at a
message first, without recursion, and returns the typed error that refuses it, or None.

The project's producers send Celery's protocol 2 only: headers naming the task and its id, a
JSON body `[args, kwargs, embed]`, no compression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from registry.errors import MessageRefused, PayloadTooLarge, RegistryError
from registry.settings import CelerySettings

__all__ = [
    "MessageLimits",
    "check_task_message",
    "clamp_time_limits",
    "nesting_depth",
    "refusal",
    "task_identity",
]

JSON = "application/json"
#: Longest task id accepted (Celery's are 36-character UUIDs; result keys embed them).
MAX_ID_LENGTH = 255
#: Headers Celery reads from a protocol 2 message, and the types it can handle for each
#: (None is allowed for all but `task` and `id`).
#: Types of values that hold no others (what JSON decodes to, besides lists and objects).
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SEQUENCES = frozenset({list, tuple})
_HEADER_TYPES: dict[str, type | tuple[type, ...]] = {
    "lang": str,
    "shadow": str,
    "eta": str,
    "expires": str,
    "group": str,
    "group_index": int,
    "root_id": str,
    "parent_id": str,
    "origin": str,
    "argsrepr": str,
    "kwargsrepr": str,
    "retries": int,
    "ignore_result": bool,
    "replaced_task_nesting": int,
    "stamped_headers": list,
    "stamps": dict,
    "timelimit": (list, tuple),
}
_PROPERTY_TYPES: dict[str, type | tuple[type, ...]] = {
    "reply_to": str,
    "correlation_id": str,
    "priority": int,
}
_SIGNATURE_TYPES: dict[str, type | tuple[type, ...]] = {
    "args": list,
    "kwargs": dict,
    "options": dict,
    "subtask_type": str,
    "immutable": bool,
}
_EMBED_TYPES: dict[str, type | tuple[type, ...]] = {
    "callbacks": list,
    "errbacks": list,
    "chain": list,
    "chord": dict,
}


@dataclass(frozen=True)
class MessageLimits:
    """The bounds a worker holds every message to, from `celery.*` settings."""

    max_bytes: int
    max_depth: int
    soft_time_limit: float
    time_limit: float

    @classmethod
    def from_settings(cls, settings: CelerySettings) -> MessageLimits:
        return cls(
            max_bytes=settings.max_message_bytes,
            max_depth=settings.max_message_depth,
            soft_time_limit=settings.task_soft_time_limit,
            time_limit=settings.task_time_limit,
        )


def task_identity(message: Any) -> tuple[str | None, str | None]:
    """The message's task name and id when both headers are strings, for logs and answers."""
    headers = getattr(message, "headers", None)
    if not isinstance(headers, Mapping):
        return None, None
    name, task_id = headers.get("task"), headers.get("id")
    return (
        name if isinstance(name, str) else None,
        task_id if isinstance(task_id, str) and 0 < len(task_id) <= MAX_ID_LENGTH else None,
    )


def check_task_message(message: Any, limits: MessageLimits) -> RegistryError | None:
    """The error that refuses `message`, or None when Celery may handle it.

    Decodes the body (kombu caches it, so Celery does not decode it again).
    """
    return (
        _check_headers(message)
        or _check_properties(message)
        or _check_content(message, limits)
        or _check_body(message, limits)
    )


def clamp_time_limits(message: Any, limits: MessageLimits) -> None:
    """Hold a producer's `timelimit` header to the settings: it may shorten a task's limits,
    never lengthen or remove them."""
    headers = message.headers
    hard, soft = headers.get("timelimit") or (None, None)
    headers["timelimit"] = (
        min(hard or math.inf, limits.time_limit),
        min(soft or math.inf, limits.soft_time_limit),
    )


def nesting_depth(value: Any, stop_past: int) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), counted without recursion;
    the count stops once it passes `stop_past`.

    Runs in the worker's main process on every message, so scalars are passed over in bulk
    (C-level passes over the types of a container's values): a container of plain JSON
    scalars adds its own level only, and a list of such lists (an import chunk's rows) one
    more."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if type(item) in _SEQUENCES:
            children: Any = item
        elif isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        types = set(map(type, children))
        if types <= _SCALARS:
            pass
        elif types <= _SEQUENCES and _SCALARS.issuperset(map(type, chain.from_iterable(children))):
            deepest = max(deepest, depth + 1)
        else:
            pending.extend((child, depth + 1) for child in children
                           if type(child) not in _SCALARS)
        if deepest > stop_past:
            return min(deepest, stop_past + 1)
    return deepest


def refusal(message: Any, reason: str, **details: Any) -> MessageRefused:
    """The typed error that refuses `message` for `reason` (which names no value)."""
    name, task_id = task_identity(message)
    shown = repr(name) if name else "an unnamed task"
    return MessageRefused(
        f"The worker refused the message for {shown}: {reason}. It was dropped, not retried.",
        task=name,
        task_id=task_id,
        reason=reason,
        **details,
    )


def _check_headers(message: Any) -> MessageRefused | None:
    headers = getattr(message, "headers", None)
    if not isinstance(headers, Mapping):
        return refusal(message, "its headers are not a mapping")
    name, task_id = task_identity(message)
    if name is None:
        return refusal(message, "its 'task' header is missing or not a string (Celery "
                                 "protocol 2 is required)")
    if task_id is None:
        return refusal(message, f"its 'id' header is missing, not a string, or longer than "
                                 f"{MAX_ID_LENGTH} characters")
    wrong = _wrongly_typed(headers, _HEADER_TYPES)
    if wrong:
        return refusal(message, f"its {wrong!r} header has the wrong type")
    if not _valid_time_limits(headers.get("timelimit")):
        return refusal(message, "its 'timelimit' header is not two positive numbers or nulls")
    if headers.get("compression"):
        return refusal(message, "it is compressed; workers accept uncompressed JSON only")
    return None


def _check_properties(message: Any) -> MessageRefused | None:
    properties = getattr(message, "properties", None) or {}
    if not isinstance(properties, Mapping):
        return refusal(message, "its properties are not a mapping")
    wrong = _wrongly_typed(properties, _PROPERTY_TYPES)
    return refusal(message, f"its {wrong!r} property has the wrong type") if wrong else None


def _check_content(message: Any, limits: MessageLimits) -> RegistryError | None:
    # What the consumer accepts: JSON, or Celery's signed format when signing is on.
    accepted = sorted(getattr(message, "accept", None) or [JSON])
    if getattr(message, "content_type", None) not in accepted:
        return refusal(message, f"its content type is not {' or '.join(accepted)}")
    if (getattr(message, "content_encoding", None) or "utf-8").lower() not in ("utf-8", "utf8"):
        return refusal(message, "its content encoding is not utf-8")
    size = len(getattr(message, "body", b"") or b"")
    if size > limits.max_bytes:
        name, _ = task_identity(message)
        return PayloadTooLarge(
            f"The message for {name!r} is {size} bytes; the limit is {limits.max_bytes} bytes.",
            task=name,
            size=size,
            limit=limits.max_bytes,
            errors=[],
        )
    return None


def _check_body(message: Any, limits: MessageLimits) -> MessageRefused | None:
    try:
        body = message.decode()
    except Exception as exc:  # kombu wraps every decoder's error differently
        if isinstance(exc, RecursionError) or isinstance(exc.__context__, RecursionError):
            return refusal(message, "its JSON nests deeper than the parser allows",
                           limit=limits.max_depth)
        return refusal(message, f"its body is not valid JSON ({type(exc).__name__})")
    depth = nesting_depth(body, stop_past=limits.max_depth)
    if depth > limits.max_depth:
        return refusal(message, f"its body nests more than {limits.max_depth} levels deep",
                        limit=limits.max_depth)
    return _check_shape(message, body)


def _check_shape(message: Any, body: Any) -> MessageRefused | None:
    expected = "[args, kwargs, embed] (a list, an object, and an object or null)"
    if not isinstance(body, list) or len(body) != 3:
        return refusal(message, f"its body is not {expected}")
    args, kwargs, embed = body
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return refusal(message, f"its body is not {expected}")
    if embed is not None and not isinstance(embed, dict):
        return refusal(message, f"its body is not {expected}")
    wrong = _wrongly_typed(embed or {}, _EMBED_TYPES) or _malformed_signature(embed or {})
    if wrong:
        return refusal(message, f"its embedded {wrong!r} has the wrong type")
    return None


def _malformed_signature(embed: Mapping[str, Any]) -> str:
    """The first embed key holding something that is not a task signature (an object naming
    its task, with list args and object kwargs and options), as Celery runs them after the
    task; "" when all are."""
    for key in ("callbacks", "errbacks", "chain"):
        if not all(_is_signature(item) for item in embed.get(key) or ()):
            return key
    chord = embed.get("chord")
    return "chord" if chord is not None and not _is_signature(chord) else ""


def _is_signature(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("task"), str)
        and _wrongly_typed(value, _SIGNATURE_TYPES) == ""
    )


def _wrongly_typed(values: Mapping[str, Any], types: Mapping[str, type | tuple[type, ...]]) -> str:
    """The first key whose value is neither None nor of its type; "" when all fit."""
    for key, expected in types.items():
        value = values.get(key)
        if value is None:
            continue
        # bool is an int: a `retries` of True would pass an isinstance check.
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            return key
    return ""


def _valid_time_limits(value: Any) -> bool:
    if value is None:
        return True
    return len(value) == 2 and all(
        limit is None
        or (isinstance(limit, int | float) and not isinstance(limit, bool)
            and 0 < limit < math.inf)
        for limit in value
    )
