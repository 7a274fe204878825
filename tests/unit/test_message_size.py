"""The producer's size check measures what kombu would write, without writing plain rows."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.utils.json import dumps

from tasks.message_size import json_size

CELLS = st.one_of(
    st.text(alphabet='abc "\\\t\n\x01\x7f', max_size=6), st.text(max_size=4),
    st.sampled_from(["", "é", "😀", "plain text"]),
)
ROWS = st.lists(st.lists(st.one_of(CELLS, CELLS, st.none(), st.integers()), max_size=4),
                max_size=5)
PLAIN_ROWS = st.lists(st.lists(st.text(alphabet='ab "\\/', max_size=5), max_size=4), max_size=5)


@settings(max_examples=400, deadline=None)
@given(rows=st.one_of(ROWS, PLAIN_ROWS), other=st.one_of(st.none(), st.text(max_size=5),
                                                           st.integers()))
def test_json_size_is_the_size_kombu_writes(rows: list[list[Any]], other: Any) -> None:
    kwargs = {"job_id": "j", "rows": rows, "first_row": 1, "other": other, "more": rows}
    assert json_size(kwargs) == len(dumps(kwargs).encode("utf-8"))


def test_plain_rows_are_measured_exactly() -> None:
    rows = [[f"Customer {i}", '"quoted"', "back\\slash", ""] for i in range(100)] + [[]]
    kwargs = {"job_id": "imp_1", "chunk_no": 3, "rows": rows}
    assert json_size(kwargs) == len(dumps(kwargs).encode("utf-8"))
