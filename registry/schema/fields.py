"""A stored schema's fields, each with the `$ref`s it uses replaced by what they refer to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def schema_fields(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each top-level property's schema, with `$ref`s replaced by what they refer to."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return {
        name: _resolve(node, defs, frozenset())
        for name, node in schema.get("properties", {}).items()
    }


def _resolve(node: Any, defs: Mapping[str, Any], seen: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs, seen) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs and ref not in seen:
        target = defs[ref.rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **siblings}, defs, seen | {ref})
    return {key: _resolve(value, defs, seen) for key, value in node.items()}
