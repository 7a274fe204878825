"""Edge cases found in review (PostgreSQL): each test pins behaviour that once broke one of
DESIGN.md's invariants; its docstring says how it used to go wrong. Each uses its own fresh
database (`postgres_url`) and in-process registries, no workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from registry import DynamicModelRegistry
from registry.errors import ValidationFailed

pytestmark = pytest.mark.integration


@pytest.fixture
def two(postgres_url: str) -> Iterator[tuple[DynamicModelRegistry, DynamicModelRegistry]]:
    """Two registries on one database: two worker processes."""
    first, second = DynamicModelRegistry(postgres_url), DynamicModelRegistry(postgres_url)
    yield first, second
    first.close()
    second.close()


# -- Invariant 2: a task after a registration sees it ----------------------------------------


class ItemWithExtra(BaseModel):
    name: str
    extra: int = 0


class ItemWithoutExtra(BaseModel):
    """`ItemWithExtra` with its column dropped (registered with force)."""

    name: str


def test_create_after_a_forced_column_drop_in_another_process(
    two: tuple[DynamicModelRegistry, DynamicModelRegistry],
) -> None:
    """The one-statement create runs the cached INSERT naming the dropped column; PostgreSQL
    refuses it (UndefinedColumn) before the registry-version check can send it back to
    reload, and only IntegrityError is handled: ProgrammingError -> RuntimeError in a task."""
    admin, worker = two
    admin.register_model("Item", ItemWithExtra)
    worker.create("Item", {"name": "warm the cache"}, user_role="admin")
    admin.register_model("Item", ItemWithoutExtra, force=True)  # committed before the next task

    assert worker.create("Item", {"name": "after"}, user_role="admin")["name"] == "after"


def test_list_and_read_after_a_forced_column_drop_in_another_process(
    two: tuple[DynamicModelRegistry, DynamicModelRegistry],
) -> None:
    """A page and a read run their kept statements on the driver's connection (registry/
    query/statements.py, `RecordTable.pg_read_on`); naming the dropped column, PostgreSQL
    refuses them, and the driver's error must still arrive as SQLAlchemy's
    ProgrammingError, which sends the call to the path that reloads the model."""
    admin, worker = two
    admin.register_model("Item", ItemWithExtra)
    kept = admin.create("Item", {"name": "kept", "extra": 3}, user_role="admin")
    for _ in range(6):  # past psycopg's threshold for preparing the statements
        assert worker.list("Item", user_role="admin", filters={"name": "kept"})["total"] == 1
        assert worker.read("Item", kept["id"], user_role="admin")["extra"] == 3
    admin.register_model("Item", ItemWithoutExtra, force=True)

    page = worker.list("Item", user_role="admin", filters={"name": "kept"})
    assert [(item["name"], "extra" in item) for item in page["items"]] == [("kept", False)]
    assert "extra" not in worker.read("Item", kept["id"], user_role="admin")


# -- concurrent registration ------------------------------------------------------------------


def _commit_first(late: DynamicModelRegistry, action: Any) -> None:
    """Run `action` (another process's registration) after `late` has synced its cache but
    before it takes the registry lock: the window two processes race through."""
    original = late.catalog.lock_state

    def lock_state(conn: Connection) -> None:
        late.catalog.lock_state = original  # type: ignore[method-assign]
        action()
        original(conn)

    late.catalog.lock_state = lock_state  # type: ignore[method-assign]


def test_concurrent_registration_keeps_the_stored_permissions(
    two: tuple[DynamicModelRegistry, DynamicModelRegistry], postgres_url: str
) -> None:
    """Two services register Person at start-up. The one without permissions synced before the
    other committed, so it saw no stored model and writes the defaults over the stored
    restriction ("re-registering without permissions keeps the stored ones")."""
    first, second = two

    class Person(BaseModel):
        name: str
        ssn: str = ""

    restricted = {"fields": {"ssn": {"read_roles": ["admin"]}}}
    _commit_first(second, lambda: first.register_model("Person", Person, permissions=restricted))
    second.register_model("Person", Person)

    fresh = DynamicModelRegistry(postgres_url)
    try:
        person = fresh.create("Person", {"name": "Ann", "ssn": "123"}, user_role="admin")
        assert "ssn" not in fresh.read("Person", person["id"], user_role="user")
    finally:
        fresh.close()


def test_set_permissions_racing_a_registration_keeps_the_new_schema(
    two: tuple[DynamicModelRegistry, DynamicModelRegistry], postgres_url: str
) -> None:
    """set_permissions saves its cached entry whole, schema included: a registration that
    committed in between is reverted in the catalog (the table keeps the new column)."""
    first, second = two

    class Item(BaseModel):
        name: str

    class ItemV2(BaseModel):
        name: str
        size: int = 0

    first.register_model("Item", Item)
    second.refresh()
    _commit_first(second, lambda: first.register_model("Item", ItemV2))
    second.set_permissions("Item", {"fields": {"name": {"read_roles": ["admin", "user"]}}})

    fresh = DynamicModelRegistry(postgres_url)
    try:
        assert fresh.model_info("Item").records.field_names == ["name", "size"]
    finally:
        fresh.close()


# -- Invariant 5: bad input gives a typed error ----------------------------------------------


class Note(BaseModel):
    text: str
    tag: Literal["a", 1] = "a"


@pytest.fixture
def notes(postgres_url: str) -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(postgres_url)
    registry.register_model("Note", Note)
    registry.create("Note", {"text": "hi", "tag": "a"}, user_role="admin")
    yield registry
    registry.close()


def test_a_long_user_id_gives_a_typed_error(notes: DynamicModelRegistry) -> None:
    """created_by is VARCHAR(200): DataError (RuntimeError in a task), not ValidationFailed."""
    with pytest.raises(ValidationFailed, match="user_id is 300 characters long"):
        notes.create("Note", {"text": "x"}, user_id="u" * 300, user_role="admin")


def test_a_long_idempotency_key_gives_a_typed_error(notes: DynamicModelRegistry) -> None:
    """The key column is VARCHAR(200): DataError, not ValidationFailed."""
    with pytest.raises(ValidationFailed, match="idempotency_key is 300 characters long"):
        notes.create("Note", {"text": "x"}, user_role="admin", idempotency_key="k" * 300)


def test_a_nul_character_in_text_gives_a_typed_error(notes: DynamicModelRegistry) -> None:
    """ "\\u0000" is valid JSON and valid for `str`; PostgreSQL text refuses it: DataError."""
    with pytest.raises(ValidationFailed, match="NUL character in 'text'"):
        notes.create("Note", {"text": "a\x00b"}, user_role="admin")


def test_filter_on_a_mixed_literal_choice_finds_the_record_on_postgresql(
    notes: DynamicModelRegistry,
) -> None:
    """The choice lives in a `json` column, which has no `=` operator: ProgrammingError."""
    notes.create("Note", {"text": "other", "tag": 1}, user_role="admin")
    page = notes.list("Note", user_role="admin", filters={"tag": "a"})
    assert [item["text"] for item in page["items"]] == ["hi"]


def test_filter_on_version_with_a_string_gives_a_typed_error(notes: DynamicModelRegistry) -> None:
    """System filters go to SQL unvalidated: integer = varchar is a ProgrammingError here
    (and silently matches nothing on SQLite)."""
    with pytest.raises(ValidationFailed, match="version"):
        notes.list("Note", user_role="admin", filters={"version": "x"})


def test_a_huge_page_number_gives_a_typed_error(notes: DynamicModelRegistry) -> None:
    """OFFSET out of bigint range was a DataError; now the offset limit names the page."""
    past_the_limit = r"Page 10000000000000000000 of 50 .* past the largest offset"
    with pytest.raises(ValidationFailed, match=past_the_limit):
        notes.list("Note", user_role="admin", page=10**19)


# -- Invariant 3: a redelivered create answers as the first delivery did ----------------------


def test_a_redelivered_create_returns_the_stored_result_after_a_model_change(
    postgres_url: str,
) -> None:
    """On SQLite the idempotency key is claimed first and the stored result returned; the
    PostgreSQL one-statement path validates the data against the current model first, so a
    redelivery after a re-registration fails with ValidationFailed although the create
    committed (the producer is told it failed)."""
    registry = DynamicModelRegistry(postgres_url)
    try:

        class Item(BaseModel):
            name: str

        class ItemV2(BaseModel):
            name: str
            owner: str

        registry.register_model("Item", Item)
        first = registry.create("Item", {"name": "a"}, user_role="admin", idempotency_key="k1")
        registry.register_model("Item", ItemV2, force=True)
        again = registry.create("Item", {"name": "a"}, user_role="admin", idempotency_key="k1")
        assert again["id"] == first["id"]
    finally:
        registry.close()
