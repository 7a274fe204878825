"""Parquet files as an inspector resource (the `parquet` extra): types from the file's schema,
rows streamed in batches with flat memory, and the extra kept out of every other path."""

from __future__ import annotations

import datetime
import decimal
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import inspector
from registry import DynamicModelRegistry
from workers.cli import main

ROWS = 60


def write_parquet(path: Path, columns: dict[str, Any], row_group_size: int = 25) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def typed_columns() -> dict[str, Any]:
    import pyarrow as pa

    utc = datetime.UTC
    return {
        "id": pa.array(range(ROWS), type=pa.int32()),
        "Miles per Gallon": pa.array([15.5 + i for i in range(ROWS)], type=pa.float32()),
        "price": pa.array([decimal.Decimal(f"{i}.25") for i in range(ROWS)], pa.decimal128(8, 2)),
        "seen": pa.array(
            [datetime.datetime(2024, 1, 1, i % 24, tzinfo=utc) for i in range(ROWS)],
            type=pa.timestamp("ns", tz="UTC"),
        ),  # fmt: skip
        "at": pa.array([datetime.datetime(2024, 1, 1, 10)] * ROWS, type=pa.timestamp("ms")),
        "day": pa.array([datetime.date(2024, 1, 1 + i % 28) for i in range(ROWS)]),
        "clock": pa.array([datetime.time(10, i % 60) for i in range(ROWS)], type=pa.time64("us")),
        "flag": pa.array([i % 2 == 0 for i in range(ROWS)]),
        "small": pa.array(range(ROWS), type=pa.uint8()),
        "code": [f"{i:05d}" for i in range(ROWS)],
        "contact": [f"user{i}@example.com" for i in range(ROWS)],
        "sold": [f"{1 + i % 12:02d}/15/2012" for i in range(ROWS)],
        "state": pa.array([("CA", "NY", "TX")[i % 3] for i in range(ROWS)]).dictionary_encode(),
        "maybe": [None if i % 4 == 0 else i for i in range(ROWS)],
        "tags": [["a", "b"][: i % 3] for i in range(ROWS)],
        "point": [{"x": i, "y": None} for i in range(ROWS)],
        "attrs": pa.array([[("k", i)] for i in range(ROWS)], pa.map_(pa.string(), pa.int64())),
        "blob": [b"\x00\x01"] * ROWS,
    }


@pytest.mark.parquet
def test_types_come_from_the_parquet_schema(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "cars.parquet", typed_columns())
    found = inspector.inspect(path)
    properties = found.json_schema["properties"]
    provenance = {name: facts.model_dump() for name, facts in found.provenance.items()}
    assert found.source.kind == "parquet"
    assert (found.source.rows_sampled, found.source.rows_total) == (ROWS, ROWS)
    assert found.field_map["Miles per Gallon"] == "miles_per_gallon"
    assert found.primary_key == ["source_id"]
    assert properties["source_id"]["maximum"] == 2**31 - 1
    assert properties["miles_per_gallon"] == {"title": "Miles per Gallon", "type": "number"}
    assert properties["price"] == {
        "type": "string", "format": "decimal", "x-max-digits": 8, "x-decimal-places": 2
    }  # fmt: skip
    assert provenance["seen"]["inferred_type"] == "datetime_tz"
    assert provenance["at"]["inferred_type"] == "datetime"
    assert properties["day"] == {"type": "string", "format": "date"}
    assert properties["clock"] == {"type": "string", "format": "time"}
    assert properties["flag"] == {"type": "boolean"}
    assert properties["small"] == {"type": "integer", "minimum": 0, "maximum": 255}
    # Text columns: codes stay text; sampled values refine them to a format or an enum.
    assert properties["code"] == {"type": "string"}
    assert properties["contact"] == {"type": "string", "format": "email"}
    assert (provenance["sold"]["inferred_type"], provenance["sold"]["format"]) == (
        "date", "%m/%d/%Y"
    )  # fmt: skip
    assert properties["state"] == {"type": "string", "enum": ["CA", "NY", "TX"]}
    # Nullable only where the file holds nulls, though the writer marked every column nullable.
    assert properties["maybe"]["anyOf"][1] == {"type": "null"}
    assert provenance["maybe"]["null_fraction"] == 0.25
    assert "maybe" not in found.json_schema["required"]
    assert "code" in found.json_schema["required"]
    assert properties["tags"]["type"] == "array"
    assert properties["attrs"] == {"type": "object"}  # no nulls: every row was sampled
    assert properties["point"]["properties"]["x"]["anyOf"][0]["type"] == "integer"
    assert provenance["price"]["parquet_type"] == "decimal128(8, 2)"
    assert "examples" not in provenance["contact"]  # sensitive, as for any source
    assert "blob" not in properties
    assert any("'blob'" in warning and "left out" in warning for warning in found.warnings)


@pytest.mark.parquet
def test_rows_read_and_register_through_the_inspection(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "cars.parquet", typed_columns())
    found = inspector.inspect(path, name="Car")
    registry = DynamicModelRegistry()
    name = registry.register_inspection(found)
    model = registry.models[name]
    parse = found.row_parser().parse
    with inspector.open_rows(path, field_map=found.field_map,
                             options=found.source.options) as rows:  # fmt: skip
        records = [model.model_validate(parse(row.values)) for row in rows]
    assert len(records) == ROWS
    first = records[1]
    assert first.source_id == 1 and first.price == decimal.Decimal("1.25")
    assert first.seen == datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.UTC)
    assert type(first.seen) is datetime.datetime  # not a pandas Timestamp, whatever is installed
    assert first.sold == datetime.date(2012, 2, 15) and first.code == "00001"
    assert first.tags == ["a"] and first.point.x == 1 and first.attrs == {"k": 1}
    assert records[0].maybe is None and records[1].maybe == 1


@pytest.mark.parquet
def test_a_field_map_reads_only_its_columns(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "t.parquet", {"a": [1, 2], "b": ["x", "y"], "c": [1.5, 2.5]})
    with inspector.open_rows(path, field_map={"c": "cost", "a": "count"}) as rows:
        assert [row.values for row in rows] == [
            {"count": 1, "cost": 1.5}, {"count": 2, "cost": 2.5}
        ]  # fmt: skip
    with pytest.raises(inspector.UnknownSourceField, match="'z'"):
        inspector.open_rows(path, field_map={"z": "z"})
    with inspector.open_rows(path, skip=1) as rows:
        assert [(row.number, row.values["a"]) for row in rows] == [(2, 2)]


@pytest.mark.parquet
def test_rows_stream_in_batches_with_flat_memory(tmp_path: Path) -> None:
    import pyarrow as pa

    rows = 100_000
    body = pa.array([f"{'x' * 200}{i}" for i in range(rows)])
    path = write_parquet(tmp_path / "big.parquet", {"id": pa.array(range(rows)), "body": body},
                         row_group_size=5_000)  # fmt: skip
    decoded = rows * 210  # what the file holds once decompressed: about 21 MB
    del body
    arrow_before = pa.total_allocated_bytes()
    arrow_peak = count = 0
    tracemalloc.start()
    try:
        with inspector.open_rows(path, options={"batch_rows": 2_500}) as reader:
            for row in reader:
                count += 1
                assert row.number == row.values["id"] + 1
                if count % 2_500 == 0:
                    arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_before)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    # A row group or two (5,000 rows, 1 MB each) in Arrow's memory, one batch of Python rows.
    assert arrow_peak < decoded / 5, arrow_peak
    assert python_peak < decoded / 5, python_peak


@pytest.mark.parquet
def test_bad_parquet_sources_give_typed_errors(tmp_path: Path) -> None:
    unnamed = write_parquet(tmp_path / "export.bin", {"a": [1, 2]})
    assert inspector.inspect(unnamed).source.kind == "parquet"  # told by its magic bytes
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(inspector.MalformedSource, match="not a readable Parquet file"):
        inspector.inspect(broken)
    with pytest.raises(inspector.ResourceNotFound):
        inspector.inspect({"kind": "parquet", "location": str(tmp_path / "absent.parquet")})


@pytest.mark.parquet
def test_dmr_inspect_reads_a_parquet_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_parquet(tmp_path / "sales.parquet", {"sku": ["a", "b"], "qty": [1, None]})
    assert main(["inspect", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"]["kind"] == "parquet"
    assert document["provenance"]["qty"]["inferred_type"] == "integer"


def test_without_pyarrow_a_parquet_source_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(inspector.UnsupportedResource, match=r"dynamic-model-registry\[parquet\]"):
        inspector.inspect(path)


def test_pyarrow_loads_only_when_a_parquet_file_is_read(tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text("id,when\n1,01/31/2012\n2,02/01/2012\n")
    script = (
        "import sys, inspector, registry, registry.imports, tasks.imports\n"
        f"found = inspector.inspect({str(source)!r})\n"
        f"with inspector.open_rows({str(source)!r}, field_map=found.field_map) as rows:\n"
        "    [found.row_parser().parse(row.values) for row in rows]\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'pyarrow'))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_parquet_kind_is_told_without_pyarrow(tmp_path: Path) -> None:
    path = tmp_path / "x.pq"
    path.write_bytes(b"PAR1")
    assert inspector.Resource.of(path).kind == "parquet"
    assert inspector.Resource.of({"location": str(path)}).kind == "parquet"
