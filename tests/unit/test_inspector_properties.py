"""Properties of inference that hold for any input: safe names are always names the registry
takes, and a sampled value that an import would reject is always counted in a warning."""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import inspector
from inspector.formats import DATE_FORMATS, DATETIME_FORMATS
from registry import DynamicModelRegistry
from registry.names import validate_field_name

#: Values of every kind inference knows, so random columns mix and widen.
TOKENS = [
    "1", "02134", "-7", "3.50", "2.25", "1e3", "yes", "no", "", "NULL", "N/A",
    "2012-01-31", "01/31/2012", "2012/01/31", "Jan 5 2013", "31.01.2012",
    "2020-01-01T10:00:00Z", "2020-01-01 10:00", "10:30", "a@example.com",
    "https://example.com/x", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "USA", "Japan",
    "hello world", "00M",
]  # fmt: skip


@given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=12))
def test_safe_field_names_are_unique_registry_field_names(names: list[str]) -> None:
    mapping = inspector.safe_field_names(dict.fromkeys(names))
    assert len(set(mapping.values())) == len(mapping)
    for field in mapping.values():
        assert validate_field_name("Model", field) == field


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.sampled_from(TOKENS), min_size=3, max_size=3), min_size=1, max_size=40))
def test_every_refused_sampled_value_is_named_in_a_warning(
    tmp_path: Path, rows: list[list[str]]
) -> None:
    path = tmp_path / "random.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["label", "first", "second", "third"])
    writer.writerows([f"r{index}", *row] for index, row in enumerate(rows))
    path.write_text(buffer.getvalue(), encoding="utf-8")
    found = inspector.inspect(path, confidence=0.5, options={"header": True})
    registry = DynamicModelRegistry()
    registry.register_inspection(found)
    model = registry.models[found.name]
    read = found.row_parser().read
    refused: dict[str, int] = {}
    with inspector.open_rows(path, field_map=found.field_map, options=found.source.options) as rs:
        for row in rs:
            values, errors = read(row.values)
            for field in errors:
                refused[field] = refused.get(field, 0) + 1
            try:
                model.model_validate(values)
            except ValidationError as exc:
                # Only values the reader already refused may fail validation.
                assert {str(error["loc"][0]) for error in exc.errors()} <= set(errors)
    for field, count in refused.items():
        source = found.provenance[field].source_field
        named = [w for w in found.warnings if w.startswith(f"Field {source!r}: ")]
        assert named, (field, count, found.warnings)
        assert re.search(rf"\b{count} of \d+ sampled values do not read", named[0])


@given(
    st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2060, 1, 1)),
    st.sampled_from([*DATE_FORMATS, *DATETIME_FORMATS[1:]]),
)
def test_compiled_date_formats_read_as_strptime_does(moment: datetime.datetime, fmt: str) -> None:
    text = moment.strftime(fmt)
    expected = datetime.datetime.strptime(text, fmt)
    kind = "date" if fmt in DATE_FORMATS else "datetime"
    found = inspector.parse_text(kind, fmt, text)
    assert found == (expected.date() if kind == "date" else expected)
    for broken in (text + "0", "x" + text, text.replace("1", "7", 1)):
        try:
            reference = datetime.datetime.strptime(broken, fmt)
        except ValueError:
            reference = None
        try:
            ours = inspector.parse_text(kind, fmt, broken)
        except ValueError:
            ours = None
        assert ours == (reference.date() if kind == "date" and reference else reference)
