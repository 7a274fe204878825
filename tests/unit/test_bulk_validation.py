"""Bulk validation gives each item the model's own verdict: the same items accepted, with the
same stored values, and the same errors for the others, whatever fast path an item took
(deferred email columns, slices validated again, column conversions)."""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr, Field, ValidationError

from registry import DynamicModelRegistry
from registry.imports.bulk import BulkValidator, email_deferred
from registry.records import RecordTable


class Size(enum.StrEnum):
    S = "s"
    M = "m"


class Tricky(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    count: int = Field(ge=0)
    price: decimal.Decimal = Field(max_digits=8, decimal_places=2)
    day: datetime.date
    email: EmailStr
    backup: EmailStr | None = None
    size: Size
    flag: bool
    weight: float | None = None


EMAILS = st.one_of(
    st.sampled_from(["a@b.co", "A.B@Example.COM", "not an email", "x@localhost", "x@foo.test",
                     "ü@example.com", " pad@example.com ", "a..b@example.com", "x" * 65 + "@e.com",
                     "John <j@example.com>", "", "a@b", "user+tag@sub.example.org"]),
    st.text(alphabet="ab.@-é ", max_size=12),
)
TEXTS = st.one_of(st.text(max_size=25), st.sampled_from(["1", "-1", "1.5", "1e3", "x", ""]))
VALUES = {
    "name": TEXTS,
    "count": st.one_of(st.integers(-5, 2**70).map(str), TEXTS),
    "price": st.one_of(st.sampled_from(["1.50", "123456.78", "1234567.8", "1.234", "-0", "NaN",
                                        "1e2", "9" * 7]), TEXTS),
    "day": st.sampled_from(["2001-02-03", "2001-02-30", "20010203", "0001-01-01", "x"]),
    "email": EMAILS,
    "backup": st.one_of(st.none(), EMAILS),
    "size": st.sampled_from(["s", "m", "l", "S"]),
    "flag": st.sampled_from(["true", "false", "yes", "0", "maybe"]),
    "weight": st.one_of(st.none(), st.sampled_from(["1.5", "inf", "nan", "1e400", "-0", "x"])),
}
VALID = {"name": "N", "count": "1", "price": "1.50", "day": "2001-02-03", "email": "a@b.co",
         "size": "s", "flag": "true"}
#: Valid items with up to three fields changed or left out, so most are valid or nearly so.
ITEM = st.tuples(
    st.fixed_dictionaries({}, optional=VALUES).map(lambda d: dict(list(d.items())[:3])),
    st.sets(st.sampled_from(sorted(VALID)), max_size=1),
).map(lambda pair: {k: v for k, v in {**VALID, **pair[0]}.items() if k not in pair[1]})
ITEMS = st.lists(ITEM, min_size=1, max_size=12)

@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordTable]:
    """The record table of the model as workers have it: rebuilt from its stored schema."""
    url = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'registry.sqlite3'}"
    registering = DynamicModelRegistry(url)
    registering.register_model("Tricky", Tricky)
    registering.close()
    worker = DynamicModelRegistry(url)
    with worker.database.read() as conn:
        yield worker.model_cache.resolve(conn, "Tricky").records
    worker.close()


def model_verdict(model: type[BaseModel], item: dict[str, Any]) -> tuple[str, Any]:
    try:
        model.model_validate(item)
    except ValidationError as exc:
        return "error", [(list(e["loc"]), e["type"], e["msg"])
                         for e in exc.errors(include_url=False)]
    return "ok", None


def test_the_rebuilt_model_defers_its_plain_email_fields(records: RecordTable) -> None:
    _twin, deferred = email_deferred(records.model)
    assert deferred == ["email", "backup"]


@settings(max_examples=300, deadline=None)
@given(items=ITEMS)
def test_bulk_validation_gives_the_models_verdicts(
    records: RecordTable, items: list[dict[str, Any]]
) -> None:
    validated = BulkValidator(records).validate(items)
    assert sorted([*validated.positions, *validated.errors]) == list(range(len(items)))
    for position, item in enumerate(items):
        verdict, errors = model_verdict(records.model, item)
        if position in validated.errors:
            found = validated.errors[position]
            if verdict == "ok":  # valid for the model, refused by a column: out of range
                assert {e["type"] for e in found} == {"out_of_range"}
            else:
                assert [(e["loc"], e["type"], e["msg"]) for e in found] == errors
        else:
            assert verdict == "ok"
            row = validated.rows[validated.positions.index(position)]
            stored = records.column_values(records.model.model_validate(item))
            assert dict(zip(records.field_names, row, strict=True)) == {
                name: stored[name] for name in records.field_names}
