"""Inference rules, each from a small file the test writes (issue 8, section 1)."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import pytest

import inspector
from registry import DynamicModelRegistry


def write_csv(
    tmp_path: Path, header: list[str], rows: list[list[str]], name: str = "t.csv"
) -> Path:
    path = tmp_path / name
    lines = [",".join(header), *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def column(tmp_path: Path, values: list[str], **options: Any) -> dict[str, Any]:
    """The provenance and property of a one-column CSV holding `values`."""
    path = write_csv(tmp_path, ["label", "value"], [[f"r{i}", v] for i, v in enumerate(values)])
    found = inspector.inspect(path, **options)
    return {
        "provenance": found.provenance["value"].model_dump(),
        "schema": found.json_schema["properties"]["value"],
        "required": "value" in found.json_schema["required"],
        "warnings": found.warnings,
        "inspection": found,
    }


def registers(found: inspector.Inspection) -> type[Any]:
    """Every inspection's schema is one the registry accepts."""
    registry = DynamicModelRegistry()
    registry.register_schema(found.name, found.json_schema)
    return registry.models[found.name]


@pytest.mark.parametrize(
    ("values", "kind", "schema"),
    [
        (["1", "-2", "30"], "integer", {"type": "integer"}),
        (["1.5", "2.25", "1e3"], "number", {"type": "number"}),
        (["12.50", "3.00", "7.25"], "decimal", {"type": "string", "format": "decimal"}),
        (["yes", "no", "Yes"], "boolean", {"type": "boolean"}),
        (["2012-01-01", "2013-02-03", "2014-12-31"], "date", {"type": "string", "format": "date"}),
        (
            ["2020-01-01T10:00:00", "2020-01-02 11:30:00", "2020-01-03T12:00"],
            "datetime",
            {"type": "string", "format": "date-time"},
        ),
        (
            ["2020-01-01T10:00:00Z", "2020-01-02T11:30:00+02:00", "2020-01-03T12:00:00-05:00"],
            "datetime_tz",
            {"type": "string", "format": "date-time"},
        ),
        (["10:00", "11:30:15", "23:59"], "time", {"type": "string", "format": "time"}),
        (
            ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", "6fa459ea-ee8a-3ca4-894e-db77e160355e"],
            "uuid",
            {"type": "string", "format": "uuid"},
        ),
        (["a@example.com", "b.c@example.org"], "email", {"type": "string", "format": "email"}),
        (["https://example.com/a", "http://x.org"], "url", {"type": "string", "format": "uri"}),
        (["hello", "world", "again"], "string", {"type": "string"}),
    ],
)
def test_each_type_is_inferred_and_registers(
    tmp_path: Path, values: list[str], kind: str, schema: dict[str, Any]
) -> None:
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == kind
    assert found["provenance"]["confidence"] == 1.0
    assert found["schema"] == schema
    registers(found["inspection"])


def test_codes_with_leading_zeros_stay_text(tmp_path: Path) -> None:
    # One leading-zero value among many plain numbers is enough: the column holds codes.
    found = column(tmp_path, ["02134", *[str(90210 + i) for i in range(50)]])
    assert found["provenance"]["inferred_type"] == "string"
    assert column(tmp_path, ["00M", "01X", "02Y"])["provenance"]["inferred_type"] == "string"
    assert found["provenance"]["examples"][0] == "02134"


@pytest.mark.parametrize(
    ("values", "fmt", "first"),
    [
        (["2012/01/01", "2012/02/28", "2013/12/31"], "%Y/%m/%d", datetime.date(2012, 1, 1)),
        (["Jan 1 2000", "Feb 28 2001", "Dec 31 1999"], "%b %d %Y", datetime.date(2000, 1, 1)),
        (["01/31/2012", "02/28/2012", "12/01/2012"], "%m/%d/%Y", datetime.date(2012, 1, 31)),
        (["31/01/2012", "28/02/2012", "01/12/2012"], "%d/%m/%Y", datetime.date(2012, 1, 31)),
        (["2012-01-31", "2012-02-28"], "iso8601", datetime.date(2012, 1, 31)),
        (["31.01.2012", "28.02.2012"], "%d.%m.%Y", datetime.date(2012, 1, 31)),
    ],
)
def test_dates_in_real_formats_record_the_format_and_parse_with_it(
    tmp_path: Path, values: list[str], fmt: str, first: datetime.date
) -> None:
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == "date"
    assert found["provenance"]["format"] == fmt
    parser = found["inspection"].row_parser()
    assert parser.parse({"value": values[0]}) == {"value": first}
    model = registers(found["inspection"])
    assert model(label="x", value=parser.parse_value("value", values[0])).value == first


def test_ambiguous_day_and_month_reads_month_first_with_a_warning(tmp_path: Path) -> None:
    found = column(tmp_path, ["01/02/2012", "03/04/2012"])
    assert found["provenance"]["format"] == "%m/%d/%Y"
    assert any("month-first and day-first" in warning for warning in found["warnings"])


def test_integers_with_blanks_stay_integers_and_are_nullable(tmp_path: Path) -> None:
    found = column(tmp_path, ["1", "", "3", "NULL", "5"])
    assert found["provenance"]["inferred_type"] == "integer"
    assert found["provenance"]["null_fraction"] == 0.4
    assert found["schema"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert not found["required"]
    parsed = found["inspection"].row_parser().parse({"value": ""})
    assert parsed == {"value": None}
    assert found["inspection"].row_parser().parse({"value": "3"}) == {"value": 3}


def test_a_column_without_nulls_is_required(tmp_path: Path) -> None:
    assert column(tmp_path, ["1", "2"])["required"]


def test_low_cardinality_text_becomes_an_enum(tmp_path: Path) -> None:
    values = ["USA", "Europe", "Japan"] * 10
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == "enum"
    assert found["schema"] == {"type": "string", "enum": ["Europe", "Japan", "USA"]}
    model = registers(found["inspection"])
    with pytest.raises(ValueError):
        model(label="x", value="Mars")


def test_the_enum_threshold_is_configurable(tmp_path: Path) -> None:
    values = ["USA", "Europe", "Japan"] * 10
    assert column(tmp_path, values, enum_max_distinct=2)["provenance"]["inferred_type"] == "string"


def test_unique_text_is_not_an_enum(tmp_path: Path) -> None:
    found = column(tmp_path, ["alpha", "beta", "gamma"])
    assert found["provenance"]["inferred_type"] == "string"


def test_a_few_disagreeing_values_keep_the_type_and_are_named(tmp_path: Path) -> None:
    values = [str(i) for i in range(99)] + ["unknown"]
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == "integer"
    assert found["provenance"]["confidence"] == 0.99
    assert any("'unknown'" in warning and "rejects" in warning for warning in found["warnings"])


def test_a_column_that_disagrees_below_the_threshold_widens_to_text(tmp_path: Path) -> None:
    values = [str(i) for i in range(80)] + [f"x{i}" for i in range(20)]
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == "string"
    assert any("below the confidence threshold" in warning for warning in found["warnings"])
    registers(found["inspection"])


def test_integers_and_decimals_widen_to_a_decimal(tmp_path: Path) -> None:
    found = column(tmp_path, ["1", "2.50", "3.25"])
    assert found["provenance"]["inferred_type"] in ("decimal", "number")
    assert found["inspection"].row_parser().parse_value("value", "2.50") in (
        decimal.Decimal("2.50"),
        2.5,
    )


def test_safe_field_names_keep_the_source_map(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        ["Miles per Gallon", "Year", "order", "class", "id", "2019 sales", "model_year", "Café"],
        [["18", "1970", "1", "a", "7", "3", "1970", "x"]],
    )
    found = inspector.inspect(path)
    assert found.field_map == {
        "Miles per Gallon": "miles_per_gallon",
        "Year": "year",
        "order": "order_",
        "class": "class_",
        "id": "source_id",
        "2019 sales": "field_2019_sales",
        "model_year": "source_model_year",
        "Café": "cafe",
    }
    assert found.json_schema["properties"]["miles_per_gallon"]["title"] == "Miles per Gallon"
    assert found.provenance["miles_per_gallon"].source_field == "Miles per Gallon"
    registers(found)


def test_names_that_clash_after_cleaning_are_numbered() -> None:
    assert inspector.safe_field_names(["A b", "a_b", "A-B"]) == {
        "A b": "a_b",
        "a_b": "a_b_2",
        "A-B": "a_b_3",
    }


def test_primary_key_prefers_a_unique_non_null_key_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        ["name", "customer_id", "score"],
        [["a", "10", "1"], ["b", "11", "1"], ["c", "12", "2"]],
    )
    found = inspector.inspect(path)
    assert found.primary_key == ["customer_id"]
    assert found.provenance["customer_id"].unique is True
    assert found.provenance["score"].unique is False


def test_no_primary_key_when_nothing_is_unique(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["a", "b"], [["1", "x"], ["1", "x"]])
    assert inspector.inspect(path).primary_key == []


def test_examples_are_left_out_for_sensitive_fields_unless_asked(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        ["login", "password", "api_token", "contact", "note"],
        [
            ["ann", "hunter2", "abc", "ann@example.com", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.x"],
            ["bob", "s3cret", "def", "bob@example.com", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjJ9.y"],
        ],
    )
    found = inspector.inspect(path)
    for field in ("password", "api_token", "contact", "note"):
        dumped = found.provenance[field].model_dump()
        assert "examples" not in dumped, field
        assert "min" not in dumped and "max" not in dumped, field
    assert found.provenance["login"].examples == ["ann", "bob"]
    shown = inspector.inspect(path, examples="all")
    assert shown.provenance["password"].examples == ["hunter2", "s3cret"]


def test_sensitive_names_are_whole_words(tmp_path: Path) -> None:
    hidden = ["Password", "AuthToken", "user_email", "API Key", "client-secret", "SSN", "auth"]
    shown = ["author", "passenger", "tokenizer_name", "emailed_on", "keyword"]
    path = write_csv(tmp_path, hidden + shown, [[f"v{i}" for i in range(12)]] * 2)
    found = inspector.inspect(path)
    by_source = {facts.source_field: facts for facts in found.provenance.values()}
    assert [name for name in hidden if by_source[name].examples is not None] == []
    assert [name for name in shown if by_source[name].examples is None] == []


def test_json_values_keep_their_types_and_nest(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    rows = [
        {"id": 1, "total": 9.5, "paid": True, "customer": {"name": "a", "vip": False},
         "tags": ["x", "y"], "meta": {"Odd Key": 1}, "note": None},
        {"id": 2, "total": 10, "paid": False, "customer": {"name": "b", "vip": True},
         "tags": [], "meta": {"Odd Key": 2}, "note": "hi", "big": 2**70,
         "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": None}]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    found = inspector.inspect(path)
    properties = found.json_schema["properties"]
    assert properties["source_id"]["type"] == "integer"
    assert properties["total"] == {"type": "number"}
    assert properties["paid"] == {"type": "boolean"}
    assert properties["customer"]["properties"]["vip"] == {"type": "boolean"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["meta"] == {"type": "object"}
    assert found.provenance["note"].null_fraction == 0.5
    assert found.provenance["big"].inferred_type == "decimal"  # beyond a 64-bit column
    assert properties["lines"]["anyOf"][0]["items"]["properties"]["qty"]["anyOf"][0] == {
        "type": "integer"
    }
    model = registers(found)
    record = model(
        source_id=3, total=1.0, paid=True, customer={"name": "c", "vip": True},
        tags=["z"], meta={"Odd Key": 3},
    )  # fmt: skip
    assert record.customer.vip is True


def test_json_columns_mixing_types_accept_any_value(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([{"v": 1}, {"v": "one"}, {"v": [1]}]))
    found = inspector.inspect(path)
    assert found.provenance["v"].inferred_type == "any"
    assert any("mixes JSON types" in warning for warning in found.warnings)
    registers(found)


def test_sample_size_is_configurable_and_the_whole_file_is_read_when_small(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path, ["n"], [[str(i)] for i in range(100)])
    whole = inspector.inspect(path)
    assert (whole.source.rows_sampled, whole.source.rows_total) == (100, 100)
    part = inspector.inspect(path, sample_rows=10)
    assert (part.source.rows_sampled, part.source.rows_total) == (10, None)
    assert part.provenance["n"].max == 9


def test_the_model_class_matches_what_the_registry_rebuilds(tmp_path: Path) -> None:
    from registry import model_to_schema

    path = write_csv(
        tmp_path,
        ["Name", "Price", "born", "Origin"],
        [["a", "1.50", "01/31/2012", "USA"], ["b", "", "02/01/2012", "Japan"]] * 5,
    )
    found = inspector.inspect(path)
    generated = found.model()
    assert model_to_schema(generated, "T") == model_to_schema(registers(found), "T")


def test_generate_model_is_async_and_names_the_class(tmp_path: Path) -> None:
    import asyncio

    path = write_csv(tmp_path, ["a"], [["1"]])
    model = asyncio.run(inspector.XInspector(path).generate_model(collection_name="Things"))
    assert model.__name__ == "Things"
    assert model(a=1).a == 1


def test_read_names_values_that_do_not_read_with_the_recorded_format(tmp_path: Path) -> None:
    values = [f"2020-01-{day:02}T10:00:00" for day in range(1, 30)] + ["1"]
    found = column(tmp_path, values)
    assert found["provenance"]["inferred_type"] == "datetime"
    parser = found["inspection"].row_parser()
    typed, errors = parser.read({"value": "1", "label": "x"})
    assert errors == {"value": "'1' does not read as datetime written as iso8601."}
    typed, errors = parser.read({"value": "2020-01-02T10:00:00", "label": ""})
    assert errors == {} and typed["value"] == datetime.datetime(2020, 1, 2, 10)
