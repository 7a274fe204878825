"""Issue 9: schemas that used to overflow the stack or take half a minute to register."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import DynamicModelRegistry
from registry.errors import InvalidSchema
from registry.schema.depth import MAX_SCHEMA_DEPTH, schema_depth
from registry.settings import Settings


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DynamicModelRegistry]:
    settings = Settings.load(environ={"DMR_DATABASE_URL": f"sqlite:///{tmp_path}/r.sqlite3"})
    registry = DynamicModelRegistry(settings=settings)
    yield registry
    registry.close()


def nested_objects(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"a": node}}
    return node


def defs_chain(length: int) -> dict[str, Any]:
    defs: dict[str, Any] = {
        f"D{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}}}
        for i in range(length)
    }
    defs[f"D{length}"] = {"type": "string"}
    return {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}


def wrapped(times: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(times):
        node = {"anyOf": [node, {"type": "null"}]}
    return {"type": "object", "properties": {"a": node}}


def test_depth_counts_data_levels_with_refs_followed_and_optional_wrappers_free() -> None:
    assert schema_depth(nested_objects(5), stop_past=64) == 5
    assert schema_depth(defs_chain(5), stop_past=64) == 6
    assert schema_depth(wrapped(3), stop_past=64) == 1
    assert schema_depth(nested_objects(5000), stop_past=10) == 11


def test_a_schema_at_the_depth_limit_registers(registry: DynamicModelRegistry) -> None:
    entry = registry.register_schema("Deep", nested_objects(MAX_SCHEMA_DEPTH))
    assert entry.name == "Deep"


@pytest.mark.parametrize(
    "schema",
    [nested_objects(MAX_SCHEMA_DEPTH + 1), nested_objects(60), nested_objects(100),
     nested_objects(5000), defs_chain(60), defs_chain(5000), wrapped(300)],
    ids=["33", "60", "100", "5000", "defs-60", "defs-5000", "anyOf-300"],
)
def test_a_deeper_schema_is_refused_naming_the_limit(
    registry: DynamicModelRegistry, schema: dict[str, Any]
) -> None:
    with pytest.raises(InvalidSchema, match=f"the limit is {MAX_SCHEMA_DEPTH}") as refused:
        registry.register_schema("TooDeep", schema)
    assert refused.value.details["limit"] == MAX_SCHEMA_DEPTH


def test_a_long_decimal_pattern_registers_in_well_under_a_second(
    registry: DynamicModelRegistry,
) -> None:
    # 384 KB: reading max_digits back from it took ~30 s with the old, quadratic expression.
    pattern = "(?:\\d{0,1}|" * 32_000 + "\n"
    schema = {
        "type": "object",
        "properties": {"p": {"anyOf": [{"type": "number"}, {"type": "string",
                                                             "pattern": pattern}]}},
    }
    started = time.monotonic()
    try:
        registry.register_schema("Pattern", schema)
    except InvalidSchema:
        pass  # refused or stored, what matters is how long it took
    assert time.monotonic() - started < 1.0
