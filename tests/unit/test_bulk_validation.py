"""Bulk validation gives each item the model's own verdict: the same items accepted, with the
same stored values, and the same errors for the others, whatever fast path an item took
(deferred email columns, slices validated again, column conversions)."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr, Field, ValidationError

from registry import DynamicModelRegistry
from registry.imports.bulk import BulkValidator, Validated, email_deferred
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
                                        "1e2", "9" * 7, "+1.5", "0001.50", "000000001", "1.",
                                        ".5", "1.5\n", "1\n2", " 1.5"]), TEXTS),
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

def worker_records(
    tmp_path_factory: pytest.TempPathFactory, name: str, model: type[BaseModel]
) -> Iterator[RecordTable]:
    """The record table of `model` as workers have it: rebuilt from its stored schema."""
    url = f"sqlite:///{tmp_path_factory.mktemp(name.lower()) / 'registry.sqlite3'}"
    registering = DynamicModelRegistry(url)
    registering.register_model(name, model)
    registering.close()
    worker = DynamicModelRegistry(url)
    with worker.database.read() as conn:
        yield worker.model_cache.resolve(conn, name).records
    worker.close()


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordTable]:
    yield from worker_records(tmp_path_factory, "Tricky", Tricky)


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


def present(item: dict[str, Any]) -> dict[str, Any]:
    """An item as an import row gives it: an empty or null value is left out."""
    return {key: value for key, value in item.items() if value is not None and value != ""}


@settings(max_examples=300, deadline=None)
@given(items=ITEMS, unfed=st.sets(st.sampled_from(sorted(VALUES)), max_size=2))
def test_validating_by_column_gives_what_validating_items_gives(
    records: RecordTable, items: list[dict[str, Any]], unfed: set[str]
) -> None:
    """The import path's column-by-column validation accepts, stores and refuses exactly as
    `validate` of the same items, fields the source does not feed included."""
    items = [{k: v for k, v in present(item).items() if k not in unfed} for item in items]
    fed = [name for name in records.field_names if name not in unfed]
    by_field = {name: [item.get(name) for item in items] for name in fed}
    assert_by_column_is_by_item(records, items, by_field)


def assert_by_column_is_by_item(
    records: RecordTable, items: list[dict[str, Any]], by_field: dict[str, list[Any]]
) -> None:
    """Validating `by_field` column by column accepts, stores (values and their types) and
    refuses exactly as validating `items` one by one."""
    validator = BulkValidator(records)
    assert validator.by_column
    by_column = validator.validate_rows(by_field, len(items), items.__getitem__)
    by_item = validator.validate(items)
    assert (by_column.positions, by_column.errors) == (by_item.positions, by_item.errors)
    assert [[(type(v), v) for v in column] for column in by_column.columns] == [
        [(type(v), v) for v in column] for column in by_item.columns]


DECIMAL_TEXTS = st.one_of(
    st.from_regex(r"[+-]?[0-9]{1,8}(\.[0-9]{0,4})?", fullmatch=True),
    st.sampled_from(["1.5\n", "1\n2", "\n", "", " 1", "1e2", "NaN", "-0.00", "٣.5"]),
    st.text(alphabet="0123456789.-+e \n", max_size=10),
)


def decimal_outcome(adapter: Any, values: list[str]) -> tuple[str, Any]:
    try:
        return "ok", [str(value) for value in adapter.validate_python(values)]
    except ValidationError as exc:
        return "refused", sorted(error["loc"][0] for error in exc.errors())


@settings(max_examples=500, deadline=None)
@given(values=st.lists(DECIMAL_TEXTS, min_size=1, max_size=8))
def test_a_decimal_column_checked_by_its_texts_validates_as_with_its_digit_limits(
    records: RecordTable, values: list[str]
) -> None:
    """The adapter a decimal column is validated with (without the digit limits when every
    text is plainly within them) gives the values and refusals the field's own gives."""
    check = BulkValidator(records)._checks["price"]  # type: ignore[index]
    assert check.shortcut is not None
    assert decimal_outcome(check.adapter_for(values), values) == decimal_outcome(
        check.adapter, values)


def test_plain_decimal_texts_within_the_limits_take_the_shortcut(records: RecordTable) -> None:
    check = BulkValidator(records)._checks["price"]  # type: ignore[index]
    assert check.shortcut is not None
    loose = check.shortcut[0]
    assert check.adapter_for(["1.50", "-123456.78", "7"]) is loose
    for outside in (["1234567.8"], ["1.234"], ["1.5", "1e2"], ["1\n2"], ["1.5", 2]):
        assert check.adapter_for(outside) is check.adapter


ROW_CELLS = st.one_of(st.sampled_from(["", "1", "x", "2001-02-03"]), st.none(), st.integers())
ROWS = st.lists(st.one_of(
    st.lists(ROW_CELLS, min_size=3, max_size=3), st.lists(ROW_CELLS, max_size=4),
    st.fixed_dictionaries({"problem": st.just("unreadable"), "values": st.lists(ROW_CELLS)}),
), max_size=6)


@settings(max_examples=200, deadline=None)
@given(rows=ROWS)
def test_row_values_by_field_are_the_items_by_column(
    records: RecordTable, rows: list[Any]
) -> None:
    from registry.imports.rows import RowPlan

    plan = RowPlan(["a", "b", "c"], {"a": "name", "c": "day", "b": "count"}, records,
                   {"day": "%Y-%m-%d"})
    items, ragged = plan.items(rows)
    found = plan.values(rows)
    assert found is not None
    values, shape_errors = found
    assert shape_errors == ragged
    assert [{f: v[p] for f, v in values.items() if v[p] is not None}
            for p in range(len(rows))] == items


class Varied(BaseModel):
    """Kinds a JSON Lines source feeds: nested values, defaults, literals, times, UUIDs."""

    code: Literal["a", "b"] | None = None
    ident: uuid.UUID | None = None
    at: datetime.datetime | None = None
    tags: list[str] | None = None
    meta: dict[str, int] | None = None
    score: float = 0.5
    level: int = Field(default=3, ge=1, le=5)
    ratio: decimal.Decimal | None = Field(default=None, max_digits=5, decimal_places=3)
    label: str = Field(default="x", pattern=r"^[a-z]+$")


VARIED = st.fixed_dictionaries({}, optional={
    "code": st.sampled_from(["a", "b", "c", 1]),
    "ident": st.sampled_from([str(uuid.UUID(int=7)), "not-a-uuid", 5]),
    "at": st.sampled_from(["2001-02-03T04:05:06Z", "2001-02-03T04:05:06", "2001-02-30T00:00",
                           "x", 1_000_000_000]),
    "tags": st.one_of(st.lists(st.text(max_size=3), max_size=3), st.just("t"), st.just([1])),
    "meta": st.one_of(st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
                      st.just({"a": "b"}), st.just([])),
    "score": st.sampled_from(["1.5", 2, "x", 1e400, True]),
    "level": st.sampled_from(["1", "5", "6", 0, 3.0, 3.5]),
    "ratio": st.sampled_from(["1.234", "12.3456", "123.4", "0.001", "x", 1.5]),
    "label": st.sampled_from(["abc", "ABC", "", "a b"]),
})


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordTable]:
    yield from worker_records(tmp_path_factory, "Varied", Varied)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(VARIED, min_size=1, max_size=8))
def test_validating_varied_kinds_by_column_gives_what_validating_items_gives(
    varied: RecordTable, items: list[dict[str, Any]]
) -> None:
    items = [present(item) for item in items]
    by_field = {name: [item.get(name) for item in items] for name in varied.field_names}
    assert_by_column_is_by_item(varied, items, by_field)


@settings(max_examples=200, deadline=None)
@given(kept=st.sets(st.integers(0, 40)), dropped=st.sets(st.integers(-2, 45)))
def test_dropping_positions_keeps_the_rest_in_order(kept: set[int], dropped: set[int]) -> None:
    """`Validated.drop` cuts runs out by slices; it must equal picking each item left (a
    position it does not hold is ignored), in `positions` and every column alike."""
    positions = sorted(kept)
    outcome = Validated(positions=list(positions),
                        columns=[[f"a{p}" for p in positions], [p * 10 for p in positions]])
    outcome.drop(dropped)
    left = [p for p in positions if p not in dropped]
    assert outcome.positions == left
    assert outcome.columns == [[f"a{p}" for p in left], [p * 10 for p in left]]
