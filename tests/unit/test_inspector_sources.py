"""Reading resources: sniffing, streaming rows, documents, SQLite reflection, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

import inspector
from inspector import (
    FieldTooLarge,
    MalformedSource,
    RaggedRow,
    ResourceNotFound,
    UnknownSourceField,
    UnreadableEncoding,
    UnsupportedResource,
)
from registry import DynamicModelRegistry


def rows_of(resource: object, **options: object) -> list[tuple[int, dict[str, object]]]:
    with inspector.open_rows(resource, **options) as rows:  # type: ignore[arg-type]
        return [(row.number, row.values) for row in rows]


def test_csv_dialect_encoding_and_header_are_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "semi.txt"
    path.write_bytes('name;city\nJosé;Zürich\nAnn;"Genève; VD"\n'.encode("cp1252"))
    with inspector.open_rows(path) as rows:
        found = [(row.number, row.values) for row in rows]
        assert rows.options["delimiter"] == ";"
        assert rows.options["encoding"] == "cp1252"
        assert rows.options["header"] is True
    assert found == [
        (1, {"name": "José", "city": "Zürich"}),
        (2, {"name": "Ann", "city": "Genève; VD"}),
    ]


def test_tsv_and_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\tb\n1\t2\n")
    assert rows_of(path) == [(1, {"a": "1", "b": "2"})]


def test_a_file_without_header_gets_column_names(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("1,2.5,x\n2,3.5,y\n")
    assert rows_of(path)[0] == (1, {"column_1": "1", "column_2": "2.5", "column_3": "x"})
    found = inspector.inspect(path)
    assert found.source.options["header"] is False
    assert found.provenance["column_1"].inferred_type == "integer"


def test_field_map_renames_and_selects_columns(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Miles per Gallon,Name\n18,a\n")
    assert rows_of(path, field_map={"Miles per Gallon": "mpg"}) == [(1, {"mpg": "18"})]
    with pytest.raises(UnknownSourceField, match="Weight"):
        inspector.open_rows(path, field_map={"Weight": "weight"})


def test_skip_resumes_after_a_row_and_numbers_keep_counting(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a\n1\n2\n\n3\n")
    assert rows_of(path, skip=2) == [(3, {"a": "3"})]


def test_recorded_options_read_the_source_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a|b\n1|2\n")
    found = inspector.inspect(path)
    resource = {"kind": "csv", "location": str(path)}
    assert rows_of(resource, options=found.source.options) == [(1, {"a": "1", "b": "2"})]


def test_json_array_streams_elements(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    rows = [{"i": i, "text": "x" * 1000} for i in range(300)]
    path.write_text(json.dumps(rows))
    found = rows_of(path)
    assert len(found) == 300
    assert found[-1] == (300, rows[-1])
    (tmp_path / "empty.json").write_text("[ ]")
    assert rows_of(tmp_path / "empty.json") == []


def test_json_lines_report_bad_rows_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n[1]\n{"a": \n{"a": 3}\n')
    with pytest.raises(MalformedSource, match="Line 2"):
        rows_of(path)
    with inspector.open_rows(path, on_bad_row="report") as reader:
        found = [(row.number, row.problem is None) for row in reader]
    assert found == [(1, True), (2, False), (3, False), (4, True)]


def test_ragged_csv_rows_give_a_typed_error_or_a_reported_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(RaggedRow) as caught:
        inspector.inspect(path)
    assert caught.value.details["row"] == 2
    assert caught.value.details["found"] == 3
    with inspector.open_rows(path, on_bad_row="report") as reader:
        problems = [row.problem for row in reader]
    assert problems[0] is None and "3 fields" in str(problems[1]) and problems[2] is None


def test_a_huge_single_field_gives_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,b\n1," + "x" * 200_000 + "\n")
    with pytest.raises(FieldTooLarge, match="max_field_size"):
        inspector.inspect(path, options={"max_field_size": 100_000})
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text('{"a": "' + "x" * 5000 + '"}\n')
    with pytest.raises(FieldTooLarge):
        rows_of(jsonl, options={"max_row_size": 1000})


def test_a_missing_file_gives_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ResourceNotFound, match="nope.csv"):
        inspector.inspect(tmp_path / "nope.csv")
    with pytest.raises(ResourceNotFound):
        inspector.inspect({"kind": "csv", "location": str(tmp_path / "nope.csv")})


def test_an_unreadable_encoding_gives_a_typed_error(tmp_path: Path) -> None:
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"a,b\n\x81\x8d\x90,\x9d\n")
    with pytest.raises(UnreadableEncoding):
        inspector.inspect(binary)
    latin = tmp_path / "l.csv"
    latin.write_bytes("a\nJosé\n".encode("latin-1"))
    with pytest.raises(UnreadableEncoding, match="utf-8"):
        inspector.inspect(latin, options={"encoding": "utf-8"})
    noise = tmp_path / "z.csv"
    noise.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(UnreadableEncoding):
        inspector.inspect(noise)


def test_bad_resources_give_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedResource):
        inspector.inspect({"kind": "xls", "location": "x"})
    with pytest.raises(UnsupportedResource, match="table"):
        inspector.inspect("sqlite:///x.db")
    with pytest.raises(UnsupportedResource):
        inspector.inspect(42)  # type: ignore[arg-type]
    for name, text in (("empty.csv", ""), ("none.json", "[{}, {}]")):
        (tmp_path / name).write_text(text)
        with pytest.raises(MalformedSource, match="no columns"):
            inspector.inspect(tmp_path / name)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"a": 1}, {"a": ')
    with pytest.raises(MalformedSource):
        inspector.inspect(bad)


def test_json_schema_document(tmp_path: Path) -> None:
    path = tmp_path / "product.schema.json"
    path.write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Product",
        "type": "object",
        "properties": {
            "Product Name": {"type": "string", "maxLength": 80, "description": "shown"},
            "price": {"type": "number", "minimum": 0},
            "sku": {"$ref": "#/$defs/Sku"},
            "released": {"type": ["string", "null"], "format": "date"},
            "status": {"enum": ["draft", "live"]},
            "owner": {"type": "string", "format": "email"},
            "size": {"type": "object", "properties": {"w": {"type": "integer"}},
                     "required": ["w"]},
        },
        "required": ["Product Name", "price", "sku", "status"],
        "$defs": {"Sku": {"type": "string", "pattern": "^[A-Z]{3}[0-9]+$"}},
    }))  # fmt: skip
    found = inspector.inspect(path)
    assert found.source.kind == "json_schema"
    assert found.name == "Product"
    assert found.field_map["Product Name"] == "product_name"
    properties = found.json_schema["properties"]
    assert properties["product_name"]["maxLength"] == 80
    assert properties["product_name"]["description"] == "shown"
    assert properties["sku"]["pattern"] == "^[A-Z]{3}[0-9]+$"
    assert properties["released"]["anyOf"][0]["format"] == "date"
    assert properties["status"]["enum"] == ["draft", "live"]
    assert found.provenance["owner"].inferred_type == "email"
    assert set(found.json_schema["required"]) == {"product_name", "price", "sku", "status"}
    registry = DynamicModelRegistry()
    registry.register_schema("Product", found.json_schema)
    assert registry.get_ui_schema("Product").fields["owner"].widget.value == "email"


def test_openapi_component(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_text(json.dumps({
        "openapi": "3.0.3",
        "info": {"title": "x", "version": "1"},
        "paths": {},
        "components": {"schemas": {
            "Pet": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "tag": {"type": "string", "nullable": True},
                "owner": {"$ref": "#/components/schemas/Owner"},
                "born": {"type": "string", "format": "date-time"},
            }},
            "Owner": {"type": "object", "properties": {"email": {"type": "string"}}},
        }},
    }))  # fmt: skip
    found = inspector.inspect({"kind": "openapi", "location": str(path), "table": "Pet"})
    assert found.name == "Pet"
    properties = found.json_schema["properties"]
    assert properties["tag"]["anyOf"][1] == {"type": "null"}
    assert properties["owner"]["anyOf"][0]["properties"]["email"]["anyOf"][0] == {"type": "string"}
    assert found.json_schema["required"] == ["name"]
    DynamicModelRegistry().register_schema("Pet", found.json_schema)
    with pytest.raises(ResourceNotFound, match="Owner"):
        inspector.inspect({"kind": "openapi", "location": str(path), "table": "Cat"})


def test_sqlite_table_by_reflection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, code VARCHAR(12) NOT NULL UNIQUE, "
            "amount NUMERIC(10, 2), placed DATE, contact TEXT, "
            "status VARCHAR(10) CHECK (status IN ('new', 'paid')), data BLOB)"
        )
        for i in range(1, 6):
            conn.exec_driver_sql(
                "INSERT INTO orders (code, amount, placed, contact, status) VALUES "
                f"('C{i:03}', {i}.50, '2024-01-0{i}', 'u{i}@example.com', 'new')"
            )
    engine.dispose()
    found = inspector.inspect({"kind": "sql", "location": url, "table": "orders"})
    properties = found.json_schema["properties"]
    assert found.name == "Orders"
    assert found.primary_key == ["source_id"]
    assert found.source.rows_total == 5
    assert properties["code"] == {"type": "string", "maxLength": 12}
    assert properties["amount"]["anyOf"][0] == {
        "type": "string", "format": "decimal", "x-max-digits": 10, "x-decimal-places": 2
    }  # fmt: skip
    assert properties["placed"]["anyOf"][0] == {"type": "string", "format": "date"}
    assert properties["contact"]["anyOf"][0] == {"type": "string", "format": "email"}
    assert properties["status"]["anyOf"][0]["enum"] == ["new", "paid"]
    assert "data" not in properties
    assert any("'data'" in warning for warning in found.warnings)
    assert found.provenance["code"].unique is True
    assert found.provenance["amount"].model_dump()["sql_type"] == "NUMERIC(10, 2)"
    DynamicModelRegistry().register_schema("Orders", found.json_schema)
    with inspector.open_rows({"kind": "sql", "location": url, "table": "orders"}) as rows:
        first = next(iter(rows))
    assert first.number == 1 and first.values["code"] == "C001"
    with pytest.raises(ResourceNotFound, match="nothing"):
        inspector.inspect({"kind": "sql", "location": url, "table": "nothing"})
