"""Imports read sources through the inspector's readers: whatever the inspector reads (a JSON
array, Parquet) imports with nothing more than its inspection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import inspector
from registry import DynamicModelRegistry
from tests.unit.test_inspector_parquet import ROWS, typed_columns, write_parquet


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    yield registry
    registry.close()


def test_a_json_array_imports_with_its_inspection(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "cars.json"
    rows = [{"Car Name": f"car {i}", "Sold On": f"01/{1 + i % 28:02d}/2012", "mpg": 20 + i}
            for i in range(30)]
    source.write_text(json.dumps(rows))
    name = registry.register_inspection(inspector.inspect(source, name="JsonCar"))
    rows[4] = 7  # not an object: a rejected row, the rest imported
    source.write_text(json.dumps(rows))
    status = registry.import_records(name, source, user_id="u", user_role="admin",
                                     options={"chunk_size": 8})
    assert (status["done"], status["rejected"]) == (29, 1)
    (reject,) = registry.imports.rejects(status["job_id"], "admin")["items"]
    assert reject["row"] == 5 and reject["errors"][0]["type"] == "unreadable_row"
    first = registry.list(name, "u", "admin", page_size=1, order_by="created_at")["items"][0]
    assert first["sold_on"] == "2012-01-01" and first["car_name"] == "car 0"


@pytest.mark.parquet
def test_a_parquet_file_imports_with_its_inspection(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "cars.parquet", typed_columns())
    name = registry.register_inspection(inspector.inspect(path, name="ParquetCar"))
    status = registry.import_records(name, path, user_id="u", user_role="admin",
                                     options={"chunk_size": 25})
    assert (status["state"], status["done"], status["rejected"]) == ("finished", ROWS, 0)
    items = registry.list(name, "u", "admin", page_size=100)["items"]
    second = next(item for item in items if item["source_id"] == 1)
    assert second["price"] == "1.25" and second["sold"] == "2012-02-15"
    assert second["code"] == "00001"


def test_row_lists_for_imports(tmp_path: Path) -> None:
    """`RowReader.lists()`: the values in column order without a dict per row; an unreadable
    row comes as its SourceRow with the problem."""
    source = tmp_path / "t.csv"
    source.write_text("a,b\n1,x\n2\n3,z\n")
    with inspector.open_rows(source, on_bad_row="report") as rows:
        got = list(rows.lists())
    assert got[0] == ["1", "x"] and got[2] == ["3", "z"]
    assert isinstance(got[1], inspector.SourceRow) and "has 1 fields" in (got[1].problem or "")
    with inspector.open_rows(source, on_bad_row="report", skip=1) as rows:
        assert [row if isinstance(row, list) else row.number for row in rows.lists()] == [
            2, ["3", "z"]]
    lines = tmp_path / "t.jsonl"
    lines.write_text('{"a": 1}\n')
    with inspector.open_rows(lines) as rows, pytest.raises(inspector.UnsupportedResource):
        next(rows.lists())
