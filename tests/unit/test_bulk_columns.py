"""The bulk write path's column steps give what the one-record path gives: the same stored
decimals, the same refusals, and COPY text PostgreSQL reads back as the values."""

from __future__ import annotations

import decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.imports.columns import copy_escape, copy_text, fast_canonical_decimal
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
