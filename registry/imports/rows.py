"""From a source's raw rows to the field values a model validates.

Rows travel as lists of values in the source's column order; a row the producer's reader
could not read travels as `{"problem", "values"}` and becomes a rejected row. The job's field
map says which column feeds which field; an empty value is a missing one (the field's default, or a
"Field required" error). Dates written in a format other than ISO are parsed with the format
the inspection recorded, so the model sees a date, not text it cannot read.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..records import RecordTable
from ..types import FieldKind

__all__ = ["RowPlan"]


class RowPlan:
    """How one job turns rows into items."""

    def __init__(
        self,
        columns: Sequence[str],
        field_map: Mapping[str, str],
        records: RecordTable,
        formats: Mapping[str, str],
    ) -> None:
        self.width = len(columns)
        self.steps = [
            (columns.index(column), field, _parser(records, field, formats.get(field)))
            for column, field in field_map.items()
        ]

    def items(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        """The rows as items, and the errors of rows that do not have the source's width."""
        items: list[dict[str, Any]] = []
        ragged: dict[int, list[dict[str, Any]]] = {}
        width, steps = self.width, self.steps
        for position, row in enumerate(rows):
            if type(row) is not list or len(row) != width:
                ragged[position] = [_shape_error(row, width)]
                items.append({})
                continue
            item = {}
            for index, field, parse in steps:
                value = row[index]
                if value is None or value == "":
                    continue
                item[field] = parse(value) if parse is not None else value
            items.append(item)
        return items, ragged

    def values(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]]
    ) -> tuple[dict[str, list[Any]], dict[int, list[dict[str, Any]]]] | None:
        """The rows' values by field, None where `items` leaves the field out (an empty or
        null value, or a row of another width), and the errors of rows that do not have the
        source's width; None when two columns feed one field (`items` says which wins)."""
        if len({field for _index, field, _parse in self.steps}) != len(self.steps):
            return None
        width, ragged = self.width, {}
        whole: Sequence[Any] = rows
        if not (set(map(type, rows)) <= {list} and set(map(len, rows)) <= {width}):
            blank = [None] * width
            whole = []
            for position, row in enumerate(rows):
                if type(row) is list and len(row) == width:
                    whole.append(row)
                else:
                    ragged[position] = [_shape_error(row, width)]
                    whole.append(blank)
        columns = list(zip(*whole, strict=True)) or [() for _ in range(width)]
        values = {}
        for index, field, parse in self.steps:
            column = list(columns[index])
            if "" in column:
                column = [None if value == "" else value for value in column]
            if parse is not None:
                column = [None if value is None else parse(value) for value in column]
            values[field] = column
        return values, ragged

    def source_values(self, row: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
        """A row's original values by field, as a rejected row keeps them."""
        if isinstance(row, Mapping):  # unreadable: the values the reader could make out
            row = row.get("values") or []
        return {field: row[index] if index < len(row) else None
                for index, field, _parse in self.steps}


def _shape_error(row: Any, width: int) -> dict[str, Any]:
    """A row the producer's reader could not read (`{"problem", "values"}`), or one of
    another width than the source's columns."""
    if isinstance(row, Mapping):
        return {"loc": [], "type": "unreadable_row", "msg": str(row.get("problem"))}
    return {"loc": [], "type": "ragged_row",
            "msg": f"The row has {len(row)} values; the source has {width} columns."}


def _parser(
    records: RecordTable, field: str, fmt: str | None
) -> Callable[[Any], Any] | None:
    if not fmt or "%" not in fmt:
        return None  # ISO or no format: the model reads it as it is
    kind = records.field_types[field].kind
    if kind is FieldKind.DATE:
        return lambda value: _strptime(value, fmt, date_only=True)
    if kind is FieldKind.DATETIME:
        return lambda value: _strptime(value, fmt, date_only=False)
    return None


def _strptime(value: Any, fmt: str, *, date_only: bool) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.datetime.strptime(value, fmt)
    except ValueError:
        return value  # left as written: the model's error names the field
    return parsed.date() if date_only else parsed
