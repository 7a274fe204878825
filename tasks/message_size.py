"""The size a producer checks before sending: bytes of the task's keyword arguments as JSON.

An import chunk is 45,000 short strings, and writing its JSON only to measure it cost the
producer as much as kombu's writing it again to send it. Rows of plain ASCII text (what a
CSV source gives) are measured without being written: in JSON each value is its text in
quotes, plus a backslash before each quote or backslash, with fixed punctuation between
values and rows. Anything else (numbers, nulls, control characters, other text) is written
and measured. A property test holds this to the written size.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import Any

from kombu.utils.json import dumps

__all__ = ["json_size"]

#: The ASCII characters that are not printable: C0 controls and DEL.
_CONTROL = bytes([*range(0x20), 0x7F])


def json_size(kwargs: Mapping[str, Any]) -> int:
    """`len(dumps(kwargs).encode("utf-8"))`, measured without writing rows of plain text."""
    measured = {}
    for key, value in kwargs.items():
        size = _rows_size(value) if type(value) is list and value else None
        if size is not None:
            measured[key] = size
    rest = {key: [] if key in measured else value for key, value in kwargs.items()}
    # Each list of rows was measured in place of the "[]" written for it.
    return len(dumps(rest).encode("utf-8")) + sum(size - 2 for size in measured.values())


def _rows_size(rows: list[Any]) -> int | None:
    """Characters of `dumps(rows)` (ASCII, so bytes too) when `rows` is lists of printable
    ASCII text; None otherwise."""
    if set(map(type, rows)) != {list}:
        return None
    try:
        text = "".join(chain.from_iterable(rows))
    except TypeError:  # a value that is not text
        return None
    if not text.isascii():
        return None
    # Printable ASCII is ASCII without control characters; the bytes' C-level passes find
    # them in a fifth of `str.isprintable`'s time (0.03 against 0.14 us a row, measured).
    data = text.encode("ascii")
    if len(data.translate(None, _CONTROL)) != len(data):
        return None
    values = sum(map(len, rows))
    filled = len(rows) - rows.count([])
    quoted = len(data) + 2 * values + data.count(b'"') + data.count(b"\\")
    # "[" + rows joined by ", " + "]"; a row is "[" + its quoted values joined by ", " + "]".
    return 2 + 2 * (len(rows) - 1) + 2 * len(rows) + quoted + 2 * (values - filled)
