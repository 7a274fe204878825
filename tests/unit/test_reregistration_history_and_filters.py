"""Edge cases found in review (SQLite): each test pins behaviour that once broke one of
DESIGN.md's invariants or README's promises; its docstring says how it used to go wrong.
"""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry
from registry import permissions as permissions_module
from registry.errors import RegistryError


@pytest.fixture
def registry() -> DynamicModelRegistry:
    return DynamicModelRegistry()


# -- re-registration -------------------------------------------------------------------------


def test_additive_reregistration_keeps_existing_values(registry: DynamicModelRegistry) -> None:
    """Widening a constraint (max_length 100 -> 200) is additive, needs no force, and must
    leave stored values alone. The column is dropped and re-added: every name becomes None
    (and fields with a default are reset to it), with no audit entry."""

    class Product(BaseModel):
        name: str = Field(max_length=100)
        price: float = Field(1.0, gt=0)

    class ProductV2(BaseModel):
        name: str = Field(max_length=200)
        price: float = Field(1.0, gt=0, description="in euros")

    registry.register_model("Product", Product)
    laptop = registry.create("Product", {"name": "Laptop", "price": 999.0}, user_role="admin")
    registry.register_model("Product", ProductV2)  # additive: no force needed

    stored = registry.read("Product", laptop["id"], user_role="admin")
    assert (stored["name"], stored["price"]) == ("Laptop", 999.0)


def test_refused_reregistration_keeps_field_restrictions(registry: DynamicModelRegistry) -> None:
    """A re-registration that is refused (SchemaIncompatible) must change nothing; it strips
    the cached field permissions of the fields it would remove, so this process then shows
    `ssn` to a role outside its read_roles."""

    class Person(BaseModel):
        name: str
        ssn: str = ""

    class PersonWithoutSsn(BaseModel):
        name: str

    registry.register_model(
        "Person", Person, permissions={"fields": {"ssn": {"read_roles": ["admin"]}}}
    )
    person = registry.create("Person", {"name": "Ann", "ssn": "123-45-6789"}, user_role="admin")
    assert "ssn" not in registry.read("Person", person["id"], user_role="user")

    with pytest.raises(RegistryError):  # SchemaIncompatible: removed ssn
        registry.register_model("Person", PersonWithoutSsn)

    assert "ssn" not in registry.read("Person", person["id"], user_role="user")


def test_history_and_as_of_hide_a_restricted_field_after_it_is_removed(
    registry: DynamicModelRegistry,
) -> None:
    """Invariant 4 for audit history: once a restricted field is removed (force), its rule is
    dropped, and a field without a rule is plainly visible, so history and as_of hand the
    old values to `user`."""

    class Person(BaseModel):
        name: str
        ssn: str = ""

    class PersonWithoutSsn(BaseModel):
        name: str

    registry.register_model(
        "Person", Person, permissions={"fields": {"ssn": {"read_roles": ["admin"]}}}
    )
    person = registry.create("Person", {"name": "Ann", "ssn": "123-45-6789"}, user_role="admin")
    registry.register_model("Person", PersonWithoutSsn, force=True)

    history = registry.history("Person", person["id"], user_role="user")
    assert all("ssn" not in entry.changes for entry in history)
    now = datetime.datetime.now(datetime.UTC)
    assert "ssn" not in registry.as_of("Person", person["id"], now, user_role="user")


# -- as_of -----------------------------------------------------------------------------------


def test_as_of_at_the_records_own_created_at_finds_it(registry: DynamicModelRegistry) -> None:
    """The audit entry takes a second clock reading, later than the record's created_at, so
    the record "did not exist" at the moment it reports as its creation."""

    class Note(BaseModel):
        text: str

    registry.register_model("Note", Note)
    note = registry.create("Note", {"text": "hi"}, user_role="admin")
    created_at = datetime.datetime.fromisoformat(note["created_at"])

    found = registry.as_of("Note", note["id"], created_at, user_role="admin")
    assert found["text"] == "hi"
    assert found["created_at"] == note["created_at"]


def test_as_of_now_matches_read_after_a_field_with_a_default_is_added(
    registry: DynamicModelRegistry,
) -> None:
    """Adding a field fills existing rows with its default, with no audit entry (Invariant 1):
    as_of(now) then lacks a value that read returns."""

    class Note(BaseModel):
        text: str

    class NoteV2(BaseModel):
        text: str
        priority: int = 3

    registry.register_model("Note", Note)
    note = registry.create("Note", {"text": "hi"}, user_role="admin")
    registry.register_model("Note", NoteV2)

    assert registry.read("Note", note["id"], user_role="admin")["priority"] == 3
    now = datetime.datetime.now(datetime.UTC)
    assert registry.as_of("Note", note["id"], now, user_role="admin").get("priority") == 3


# -- list: ordering and filters --------------------------------------------------------------


class Priced(BaseModel):
    name: str
    price: decimal.Decimal = decimal.Decimal("0")


def test_order_by_decimal_is_numeric_on_sqlite(registry: DynamicModelRegistry) -> None:
    """SQLite stores Decimal as text, so order_by sorts "10.25" < "100" < "9.5"."""
    registry.register_model("Priced", Priced)
    for price in ("9.5", "10.25", "100"):
        registry.create("Priced", {"name": price, "price": price}, user_role="admin")

    page = registry.list("Priced", user_role="admin", order_by="price")
    assert [item["price"] for item in page["items"]] == ["9.5", "10.25", "100"]


def test_filter_on_decimal_matches_equal_values_on_sqlite(registry: DynamicModelRegistry) -> None:
    """10.250 == 10.25 (PostgreSQL's NUMERIC finds it); SQLite compares the text."""
    registry.register_model("Priced", Priced)
    registry.create("Priced", {"name": "a", "price": "10.25"}, user_role="admin")

    assert registry.list("Priced", user_role="admin", filters={"price": "10.250"})["total"] == 1


def test_filter_on_a_mixed_literal_choice_finds_the_record(registry: DynamicModelRegistry) -> None:
    """A Literal of strings and ints is stored in a JSON column; equality against it finds
    nothing on SQLite (and raises ProgrammingError on PostgreSQL: json = varchar)."""

    class Tagged(BaseModel):
        name: str
        tag: Literal["a", 1] = "a"

    registry.register_model("Tagged", Tagged)
    registry.create("Tagged", {"name": "x", "tag": "a"}, user_role="admin")

    assert registry.list("Tagged", user_role="admin", filters={"tag": "a"})["total"] == 1


def test_filter_on_created_at_takes_an_iso_string(registry: DynamicModelRegistry) -> None:
    """created_at is a documented filter, and a JSON producer can only send it as a string:
    the raw value reaches UTCDateTime, which crashes (StatementError -> RuntimeError in a
    task) instead of matching or giving ValidationFailed."""

    class Note(BaseModel):
        text: str

    registry.register_model("Note", Note)
    note = registry.create("Note", {"text": "hi"}, user_role="admin")

    try:
        page = registry.list("Note", user_role="admin", filters={"created_at": note["created_at"]})
    except RegistryError:
        return  # a typed refusal would also satisfy Invariant 5
    assert page["total"] == 1


def test_a_huge_page_number_gives_a_typed_error(registry: DynamicModelRegistry) -> None:
    """Invariant 5: OverflowError on SQLite (DataError on PostgreSQL), not ValidationFailed."""

    class Note(BaseModel):
        text: str

    registry.register_model("Note", Note)
    try:
        registry.list("Note", user_role="admin", page=10**20)
    except RegistryError:
        pass
    except Exception as exc:
        pytest.fail(f"untyped {type(exc).__name__}: {exc}")


def test_a_role_that_is_not_a_string_gives_a_typed_error(registry: DynamicModelRegistry) -> None:
    """Invariant 5: a raw producer's `"user_role": ["admin"]` raises TypeError (unhashable)."""

    class Note(BaseModel):
        text: str

    registry.register_model("Note", Note)
    try:
        registry.create("Note", {"text": "hi"}, user_role=["admin"])  # type: ignore[arg-type]
    except RegistryError:
        pass
    except Exception as exc:
        pytest.fail(f"untyped {type(exc).__name__}: {exc}")


# -- masks -----------------------------------------------------------------------------------


def test_a_mask_unknown_to_one_process_does_not_break_its_other_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mask added with register_mask() in one process can be stored; a process that lacks
    it cannot load the catalog at all, so even an unrelated model (and the registry's
    constructor) fails with InvalidPermissions."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    monkeypatch.setitem(permissions_module._masks, "last2", lambda value: "**" + str(value)[-2:])

    class Note(BaseModel):
        text: str

    class Card(BaseModel):
        number: str

    first = DynamicModelRegistry(url)
    first.register_model("Note", Note)
    first.register_model("Card", Card, permissions={"fields": {"number": {"mask": "last2"}}})
    first.close()

    monkeypatch.delitem(permissions_module._masks, "last2")  # another process: never registered
    other = DynamicModelRegistry(url)
    try:
        assert other.create("Note", {"text": "hi"}, user_role="admin")["text"] == "hi"
    finally:
        other.close()
