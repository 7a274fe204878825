"""How deeply a JSON Schema nests its data once its `$ref`s are followed, and the limit on it.

Rebuilding a model walks its schema recursively, as Pydantic does; a schema nested a few hundred
levels deep, or a chain of `$defs` each referring to the next, would overflow the stack and
surface as a bare `RecursionError`. `check_schema_depth` refuses such schemas first, with
`InvalidSchema` naming the limit.

Depth counts levels of data: each object's properties and each array's items are one level
down; `anyOf`/`oneOf`/`allOf` and `$ref` are not (so a field made optional, which Pydantic
writes as `anyOf: [{$ref}, {type: null}]`, nests no deeper than the required one). Those
wrappers are still walked and bounded: a path may pass at most `_WRAPPERS_PER_LEVEL` of them per
level of the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidSchema

__all__ = ["MAX_SCHEMA_DEPTH", "check_schema_depth", "schema_depth", "too_deep"]

#: Deepest nesting of objects and arrays a model's schema may describe. No record needs more;
#: well within what rebuilding a model (and a task message, `celery.max_message_depth`) allows.
MAX_SCHEMA_DEPTH = 16
_WRAPPERS_PER_LEVEL = 4
_DEFS_KEYS = ("definitions", "$defs")
#: Keywords holding subschemas one data level down: a mapping of them, one, or a list of them.
_CHILD_MAPPINGS = ("properties", "patternProperties")
_CHILD_SCHEMAS = ("items", "additionalProperties", "contains")
_CHILD_LISTS = ("prefixItems",)
#: Keywords holding alternatives at the same level.
_SAME_LEVEL_LISTS = ("anyOf", "oneOf", "allOf")


def check_schema_depth(model_name: str, schema: Mapping[str, Any]) -> None:
    """Raise `InvalidSchema` if `schema` nests deeper than `MAX_SCHEMA_DEPTH`."""
    depth = schema_depth(schema, stop_past=MAX_SCHEMA_DEPTH)
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidSchema(
            f"The schema of model {model_name!r} nests objects and arrays more than "
            f"{MAX_SCHEMA_DEPTH} levels deep (with each $ref followed); the limit is "
            f"{MAX_SCHEMA_DEPTH}.",
            model=model_name,
            limit=MAX_SCHEMA_DEPTH,
        )


def too_deep(model_name: str) -> InvalidSchema:
    """The error for a model whose building overflowed the stack (a `RecursionError`)."""
    # The depth check keeps registered schemas well inside the stack; a Python class can still
    # nest deeper models than that before it is ever turned into one.
    return InvalidSchema(
        f"The schema of model {model_name!r} nests too deeply to be stored or rebuilt; the "
        f"limit is {MAX_SCHEMA_DEPTH} levels of objects and arrays.",
        model=model_name,
        limit=MAX_SCHEMA_DEPTH,
    )


def schema_depth(schema: Mapping[str, Any], stop_past: int) -> int:
    """The data nesting depth of `schema` (a model's fields are level 1), each `$ref` into its
    definitions standing where it is used. The count stops once it passes `stop_past`, so the
    walk stays shallow, and each definition is measured once."""
    defs: dict[str, Any] = {}
    for key in _DEFS_KEYS:
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)
    body = {key: value for key, value in schema.items() if key not in _DEFS_KEYS}
    return _Walk(defs, stop_past).depth(body, 0, 0)


class _Walk:
    def __init__(self, defs: Mapping[str, Any], stop_past: int) -> None:
        self.defs = defs
        self.stop_past = stop_past
        self.max_steps = (stop_past + 1) * _WRAPPERS_PER_LEVEL
        #: Definition name -> the depth it adds below the node that refers to it.
        self.measured: dict[str, int] = {}
        self.open: set[str] = set()

    def depth(self, node: Any, level: int, steps: int) -> int:
        """The deepest level reached from `node` at `level`; `steps`: nodes on the path."""
        if level > self.stop_past or steps > self.max_steps:
            return self.stop_past + 1
        if not isinstance(node, Mapping):
            return level
        deepest = max(level, self.referred(node.get("$ref"), level, steps))
        for child, child_level in self.children(node, level):
            deepest = max(deepest, self.depth(child, child_level, steps + 1))
            if deepest > self.stop_past:
                break
        return deepest

    def children(self, node: Mapping[str, Any], level: int) -> list[tuple[Any, int]]:
        found: list[tuple[Any, int]] = []
        for key in _CHILD_MAPPINGS:
            if isinstance(node.get(key), Mapping):
                found.extend((child, level + 1) for child in node[key].values())
        for key in _CHILD_SCHEMAS:
            if isinstance(node.get(key), Mapping):
                found.append((node[key], level + 1))
        for key in _CHILD_LISTS:
            if isinstance(node.get(key), list):
                found.extend((child, level + 1) for child in node[key])
        for key in _SAME_LEVEL_LISTS:
            if isinstance(node.get(key), list):
                found.extend((child, level) for child in node[key])
        return found

    def referred(self, ref: Any, level: int, steps: int) -> int:
        """The depth reached through `ref`, its definition standing where the reference is."""
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        if name is None or name not in self.defs or name in self.open:
            return level  # not ours, or recursive (model building refuses that itself)
        if name not in self.measured:
            self.open.add(name)
            try:
                reached = self.depth(self.defs[name], level, steps + 1)
            finally:
                self.open.discard(name)
            if reached > self.stop_past:
                return reached
            self.measured[name] = reached - level
        return level + self.measured[name]
