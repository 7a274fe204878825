"""Registering inspections: the round trip (inspect, edit, register), provenance in the catalog,
formats in the UI schema, and the `dmr inspect` / `dmr register --from` commands."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

import inspector
from registry import DynamicModelRegistry, InvalidSchema
from registry.inspections import stored_field_map, stored_inspection
from workers.cli import main

CARS = (
    "Name,Miles per Gallon,Year,Origin,Contact,Sold\n"
    + "".join(
        f"car {i},{15 + i % 10}.5,{1970 + i % 3},{('USA', 'Europe', 'Japan')[i % 3]},"
        f"owner{i}@example.com,{i % 12 + 1:02}/15/2012\n"
        for i in range(30)
    )
    + "car x,,1972,USA,x@example.com,01/31/2013\n"
)


@pytest.fixture
def cars(tmp_path: Path) -> Path:
    path = tmp_path / "cars.csv"
    path.write_text(CARS, encoding="utf-8")
    return path


def test_round_trip_inspect_edit_register(cars: Path) -> None:
    document = inspector.inspect(cars).model_dump(mode="json")
    # A reviewer renames the model, makes Origin free text and drops a warning.
    document["name"] = "Car"
    document["json_schema"]["properties"]["origin"] = {"type": "string", "maxLength": 20}
    document["provenance"]["origin"]["inferred_type"] = "string"
    text = json.dumps(document)
    registry = DynamicModelRegistry()
    assert registry.register_inspection(text) == "Car"
    entry = registry.model_info("Car")
    assert entry.model.model_fields["origin"].annotation is str
    assert stored_field_map(entry) == document["field_map"]
    stored = stored_inspection(entry)
    assert stored is not None and "json_schema" not in stored
    parser = inspector.RowParser.from_document(stored)
    assert str(parser.parse({"sold": "01/31/2013"})["sold"]) == "2013-01-31"
    assert parser.read({"year": "MCMLXX"})[1] == {"year": "'MCMLXX' does not read as integer."}
    assert stored["provenance"]["miles_per_gallon"]["source_field"] == "Miles per Gallon"
    listed = {model["name"]: model for model in registry.list_models()}["Car"]
    assert listed["provenance"]["source"] == "inspection"
    assert listed["provenance"]["inspection"]["field_map"]["Miles per Gallon"] == (
        "miles_per_gallon"
    )


def test_inferred_formats_reach_the_ui_schema(cars: Path) -> None:
    registry = DynamicModelRegistry()
    name = registry.register_inspection(inspector.inspect(cars))
    ui = registry.get_ui_schema(name)
    assert ui.fields["contact"].widget.value == "email"
    assert ui.fields["sold"].widget.value == "date_picker"
    assert ui.fields["sold"].format == "%m/%d/%Y"  # shown as the source wrote it
    assert ui.fields["origin"].widget.value in ("select", "radio", "dropdown")
    assert ui.fields["miles_per_gallon"].label == "Miles per Gallon"


def test_imported_values_parse_with_the_recorded_format_and_validate(cars: Path) -> None:
    found = inspector.inspect(cars)
    registry = DynamicModelRegistry()
    name = registry.register_inspection(found, "Car")
    model = registry.models[name]
    parse = found.row_parser().parse
    with inspector.open_rows(cars, field_map=found.field_map, options=found.source.options) as rows:
        records = [model.model_validate(parse(row.values)) for row in rows]
    assert len(records) == 31
    assert records[-1].miles_per_gallon is None
    assert str(records[-1].sold) == "2013-01-31"


def test_an_import_parses_dates_with_each_recorded_format(tmp_path: Path) -> None:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    source = tmp_path / "dates.csv"
    source.write_text("n,slashed,named,us,zip\n" + "".join(
        f"{i},{2000 + i}/{1 + i % 12:02}/{13 + i:02},{months[i % 12]} {1 + i} {1990 + i},"
        f"{1 + i % 12:02}/{13 + i:02}/{2010 + i},{i:05}\n"
        for i in range(12)
    ))  # fmt: skip
    found = inspector.inspect(source, name="Dated")
    formats = {field: found.provenance[field].format for field in ("slashed", "named", "us")}
    assert formats == {"slashed": "%Y/%m/%d", "named": "%b %d %Y", "us": "%m/%d/%Y"}
    registry = DynamicModelRegistry(f"sqlite:///{tmp_path / 'dmr.sqlite3'}")
    try:
        registry.register_inspection(found)
        status = registry.import_records("Dated", source, user_id="u", user_role="admin")
        assert (status["done"], status["rejected"]) == (12, 0), status
        items = registry.list("Dated", "u", "admin", order_by="n", page_size=2)["items"]
    finally:
        registry.close()
    second = items[1]
    assert (second["slashed"], second["named"], second["us"], second["zip"]) == (
        "2001-02-14", "1991-02-02", "2011-02-14", "00001"
    )  # fmt: skip


def test_register_from_resource_is_async_and_returns_the_name(cars: Path) -> None:
    registry = DynamicModelRegistry()
    assert asyncio.run(registry.register_from_resource(cars, "Vehicle")) == "Vehicle"
    assert "miles_per_gallon" in registry.models["Vehicle"].model_fields
    assert asyncio.run(registry.register_from_resource(cars)) == "Cars"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("json_schema"), "lacks"),
        (lambda d: d["field_map"].update({"Ghost": "ghost"}), "ghost"),
        (lambda d: d.update(provenance=[]), "provenance"),
        (lambda d: d.update(name="not a name"), "not an identifier"),
    ],
)
def test_a_malformed_inspection_is_refused_naming_what_is_wrong(
    cars: Path, change: Any, message: str
) -> None:
    document = inspector.inspect(cars).model_dump(mode="json")
    change(document)
    registry = DynamicModelRegistry()
    with pytest.raises(Exception, match=message) as caught:
        registry.register_inspection(document)
    assert caught.type.__name__ in ("InvalidSchema", "InvalidName")
    assert registry.list_models() == []


def test_a_document_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidSchema, match="not JSON"):
        DynamicModelRegistry().register_inspection("{nope")


def test_the_document_reads_back_as_an_inspection(cars: Path) -> None:
    found = inspector.inspect(cars)
    again = inspector.Inspection.from_document(json.dumps(found.model_dump(mode="json")))
    assert again == found
    with pytest.raises(inspector.InvalidInspection, match="primary_key"):
        inspector.Inspection.from_document({**found.model_dump(), "primary_key": ["nothing"]})


# --------------------------------------------------------------------------- the CLI


def test_dmr_inspect_prints_a_summary_or_the_document(
    cars: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(cars)]) == 0
    summary = capsys.readouterr().out
    assert "miles_per_gallon?" in summary and "<- 'Miles per Gallon'" in summary
    assert main(["inspect", str(cars), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Cars"
    written = tmp_path / "cars.inspection.json"
    assert main(["inspect", str(cars), "-o", str(written), "--name", "Car"]) == 0
    assert json.loads(written.read_text())["name"] == "Car"
    assert "dmr register --from" in capsys.readouterr().out


def test_dmr_inspect_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(CARS.encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["inspect", "-", "--json", "--name", "Piped"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"]["location"] == "<stdin>"
    assert document["source"]["rows_total"] == 31


def test_dmr_inspect_reports_a_bad_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(tmp_path / "absent.csv")]) == 2
    assert "dmr: No file at" in capsys.readouterr().err
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert main(["inspect", unreachable, "--table", "t"]) == 3
    assert "Cannot reach" in capsys.readouterr().err


def test_dmr_register_from_an_inspection(
    cars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "dmr.sqlite3"
    monkeypatch.setenv("DMR_DATABASE_URL", f"sqlite:///{database}")
    written = tmp_path / "cars.inspection.json"
    assert main(["inspect", str(cars), "-o", str(written)]) == 0
    capsys.readouterr()
    assert main(["register", "--from", str(written), "--name", "Car", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["name"] == "Car"
    assert described["provenance"]["inspection"]["field_map"]["Year"] == "year"
    registry = DynamicModelRegistry(f"sqlite:///{database}")
    try:
        assert "year" in registry.models["Car"].model_fields
    finally:
        registry.close()
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "X"}')
    assert main(["register", "--from", str(broken)]) == 1
    assert "lacks" in capsys.readouterr().err


def test_dmr_inspect_reflects_an_sql_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (sku TEXT PRIMARY KEY, price NUMERIC(6, 2))")
        conn.exec_driver_sql("INSERT INTO items VALUES ('A1', 2.50)")
    engine.dispose()
    assert main(["inspect", url, "--table", "items", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["primary_key"] == ["sku"]
    assert document["provenance"]["price"]["sql_type"] == "NUMERIC(6, 2)"
    assert main(["inspect", url, "--table", "absent"]) == 2
    assert "No table 'absent'" in capsys.readouterr().err
