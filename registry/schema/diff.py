"""How two stored schemas of one model differ, and whether existing records survive the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import schema_fields
from .keywords import INDEX_KEYS, WIDTH_FORMATS, X_PYTHON_TYPE
from .pydantic_decimal import is_pydantic_decimal


@dataclass(frozen=True)
class SchemaDiff:
    """How a model's fields differ between two stored schemas."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: field -> (old schema, new schema), refs resolved.
    changed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    #: Added fields that are required and have no default: existing records lack a value.
    added_required: tuple[str, ...] = ()
    #: Changed fields whose type changed (becoming nullable does not count), or that became
    #: required.
    retyped: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def is_additive(self) -> bool:
        """Whether existing records stay valid and stored: nothing removed, retyped or required."""
        return not (self.removed or self.retyped or self.added_required)

    def describe(self) -> str:
        """The difference in words, e.g. "removed: price; changed: name (string -> integer)"."""
        if self.is_empty:
            return "no changes"
        parts = []
        if self.removed:
            parts.append("removed: " + ", ".join(self.removed))
        if self.changed:
            parts.append("changed: " + ", ".join(self.describe_change(n) for n in self.changed))
        optional = [name for name in self.added if name not in self.added_required]
        if optional:
            parts.append("added: " + ", ".join(optional))
        if self.added_required:
            parts.append("added (required, no default): " + ", ".join(self.added_required))
        return "; ".join(parts)

    def describe_change(self, name: str) -> str:
        old, new = self.changed[name]
        old_type, new_type = _type_label(old), _type_label(new)
        if old_type != new_type:
            return f"{name} ({old_type} -> {new_type})"
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"{name} ({', '.join(keys)})"


def diff_schemas(old: Mapping[str, Any], new: Mapping[str, Any]) -> SchemaDiff:
    """The difference between the stored schemas `old` and `new` of one model (a field's
    index keywords change its indexes, not its column or its values, so they are left out)."""
    before, after = _without_index_keys(schema_fields(old)), _without_index_keys(schema_fields(new))
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    changed = {n: (before[n], after[n]) for n in before if n in after and before[n] != after[n]}
    added = tuple(n for n in after if n not in before)
    retyped = tuple(
        n
        for n, (was, now) in changed.items()
        if not _same_or_wider(_type_label(was), _type_label(now))
        or (n in new_required and n not in old_required)
    )
    return SchemaDiff(
        added=added,
        removed=tuple(n for n in before if n not in after),
        changed=changed,
        added_required=tuple(n for n in added if n in new_required),
        retyped=retyped,
    )


def _without_index_keys(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {k: v for k, v in node.items() if k not in INDEX_KEYS}
        if isinstance(node, Mapping) else node
        for name, node in fields.items()
    }


def _same_or_wider(old: str, new: str) -> bool:
    """Whether a field keeps its type, perhaps now also allowing null (still the same column)."""
    return old == new or set(new.split("|")) == set(old.split("|")) | {"null"}


def _type_label(node: Any) -> str:
    """A short name of the type a resolved node describes, ignoring its constraints."""
    if not isinstance(node, Mapping):
        return "any"
    for keyword in ("anyOf", "oneOf"):
        if isinstance(node.get(keyword), list):
            others = [m for m in node[keyword] if _type_label(m) != "null"]
            if is_pydantic_decimal(others):
                return "decimal" if len(others) == len(node[keyword]) else "decimal|null"
            return "|".join(_type_label(m) for m in node[keyword])
    if "enum" in node or "const" in node:
        return "choice"
    kind = node.get("type")
    if isinstance(kind, list):
        return "|".join(_type_label({**node, "type": k}) for k in kind)
    if kind == "array":
        container = node.get(X_PYTHON_TYPE) or ("set" if node.get("uniqueItems") else "array")
        return f"{container}<{_type_label(node.get('items'))}>"
    if kind == "object" and "properties" not in node:
        return f"dict<{_type_label(node.get('additionalProperties'))}>"
    fmt = node.get("format")
    if fmt == "decimal":
        return "decimal"
    return f"{kind}/{fmt}" if fmt and fmt not in WIDTH_FORMATS else str(kind or "any")
