"""The bulk write path's column steps give what the one-record path gives: the same stored
decimals, the same refusals, and COPY text PostgreSQL reads back as the values."""

from __future__ import annotations

import decimal
import enum
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.batch_audit import BatchPayload, batch_of, batch_record_ids, series_batch_key
from registry.imports.columns import (
    _choice_value,
    _choices,
    _decimals,
    copy_escape,
    copy_text,
    fast_canonical_decimal,
)
from registry.records.table import canonical_decimal

DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.builds(lambda digits, exponent: decimal.Decimal(f"{digits}E{exponent}"),
              st.integers(-(10**30), 10**30), st.integers(-1100, 1100)),
    st.sampled_from([decimal.Decimal(text) for text in (
        "0", "-0", "-0.00", "1.500", "1E+2", "1E-7", "9" * 998, "0." + "0" * 997 + "1",
        "1" + "0" * 995 + ".5", "12345678901234567890.125", "sNaN", "-Infinity",
    )]),
)


def outcome(step: object, value: decimal.Decimal, places: int | None) -> tuple[str, str]:
    try:
        result = step(value, places)  # type: ignore[operator]
    except (ValueError, ArithmeticError) as exc:
        return "error", type(exc).__name__
    return "ok", str(result)


@settings(max_examples=800, deadline=None)
@given(value=DECIMALS, places=st.one_of(st.none(), st.integers(0, 6)))
def test_fast_canonical_decimal_matches_canonical_decimal(
    value: decimal.Decimal, places: int | None
) -> None:
    assert outcome(fast_canonical_decimal, value, places) == outcome(
        canonical_decimal, value, places)


@pytest.mark.parametrize("text", ["plain", "tab\there", "a\\b", "line\nbreak", "cr\r", "\\N"])
def test_copy_escape_leaves_no_bare_separator(text: str) -> None:
    escaped = copy_escape(text)
    assert "\t" not in escaped and "\n" not in escaped and "\r" not in escaped
    assert escaped.replace("\\\\", "").count("\\") == sum(text.count(c) for c in "\t\n\r")


def test_copy_text_is_rows_of_tab_separated_columns() -> None:
    assert copy_text([["a", "b"], ["1", "\\N"]]) == "a\t1\nb\t\\N\n"
    assert copy_text([[], []]) == ""


@settings(max_examples=400, deadline=None)
@given(data=st.data(), places=st.one_of(st.none(), st.integers(0, 4)))
def test_decimal_columns_match_canonical_decimal_of_each_value(
    data: st.DataObject, places: int | None
) -> None:
    """The column step (which leaves a column already at its places as it is) stores what
    `canonical_decimal` stores for each value, and refuses the same values."""
    at_places = st.decimals(allow_nan=False, allow_infinity=False, places=places or 0)
    values = data.draw(st.lists(st.one_of(st.none(), at_places, at_places, DECIMALS), max_size=6))
    stored, problems = _decimals(places)(values)
    for position, value in enumerate(values):
        expected = ("ok", "None") if value is None else outcome(canonical_decimal, value, places)
        got = ("error", expected[1]) if position in problems else ("ok", str(stored[position]))
        assert got == expected


class Shade(enum.StrEnum):
    DARK = "dark"
    LIGHT = "light"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


@given(values=st.lists(st.one_of(st.none(), st.sampled_from([*Shade, *Size, "dark", 1, 2]))))
def test_choice_columns_store_each_value_as_choice_value_does(values: list[object]) -> None:
    stored, problems = _choices(values)
    assert problems == {}
    assert [(type(v), v) for v in stored] == [(type(_choice_value(v)), _choice_value(v))
                                              for v in values]


@given(batch=st.text(alphabet="0123456789abcdef", min_size=20, max_size=20),
       indexes=st.lists(st.integers(0, 16**10 - 1), max_size=5))
def test_batch_record_ids_name_their_batch_and_index(batch: str, indexes: list[int]) -> None:
    ids = batch_record_ids(batch, indexes)
    assert [batch_of(record_id) for record_id in ids] == [(batch, index) for index in indexes]
    assert all(len(record_id) == 36 for record_id in ids)


@given(numbers=st.lists(st.integers(0, 2**20 - 1), min_size=2, max_size=5, unique=True))
def test_a_series_batches_and_their_record_ids_sort_by_number(numbers: list[int]) -> None:
    keys = {number: series_batch_key("import:job-1", number) for number in numbers}
    ids = {number: batch_record_ids(key, [0, 1, 4999]) for number, key in keys.items()}
    ordered = sorted(numbers)
    assert [keys[n] for n in ordered] == sorted(keys.values())
    assert [i for n in ordered for i in ids[n]] == sorted(i for n in numbers for i in ids[n])
    assert all(len(key) == 20 and batch_of(ids[n][1]) == (key, 1) for n, key in keys.items())


def test_series_differ_and_numbers_past_their_bits_keep_distinct_keys() -> None:
    assert series_batch_key("import:a", 7) != series_batch_key("import:b", 7)
    beyond = [series_batch_key("import:a", n) for n in (2**20 - 1, 2**20, 2**20 + 1)]
    assert len(set(beyond)) == 3 and all(len(key) == 20 for key in beyond)
    assert beyond[0].endswith("fffff") and not beyond[1].endswith("00000")


def test_batch_payloads_read_alike_written_by_column_or_by_row() -> None:
    """Payloads are written field by field now; those written row by row still expand to
    the same create entries."""
    fields, indexes = ["name", "amount"], [0, 2]
    columns = [["a", "b"], [decimal.Decimal("1.50"), None]]
    by_column, _digest = BatchPayload(fields, indexes, columns).encode()
    by_row = zlib.compress(json.dumps(
        {"fields": fields, "indexes": indexes, "rows": [["a", "1.50"], ["b", None]]}).encode())
    for payload in (by_column, by_row):
        read = BatchPayload.decode(payload)
        assert read.indexes == indexes
        assert [read.changes_of(p) for p in (0, 1)] == [
            {"name": {"old": None, "new": "a"}, "amount": {"old": None, "new": "1.50"}},
            {"name": {"old": None, "new": "b"}, "amount": {"old": None, "new": None}},
        ]
