"""A create command on PostgreSQL runs as one statement on the driver; these tests hold it to
what the full command path does: the same events, audit entries, idempotency records and
answers, and the full path's answer whenever the statement cannot decide alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from registry import DynamicModelRegistry
from registry.cqrs.tables import events as events_table
from registry.errors import ValidationFailed, VersionConflict
from registry.tables import audit_outbox, idempotency_keys
from tests.cqrs_contract import PERMISSIONS, Order

pytestmark = pytest.mark.integration

#: What differs between two creates of the same data: ids, times, command ids, hashes.
_VARYING = {"id", "created_at", "updated_at", "command_id", "aggregate_id", "position",
            "record_id", "ts", "entry_hash", "seq", "tx_id", "event_id", "key"}


class Paths:
    """Counts what each create spends: driver statements, and SQLAlchemy statements."""

    def __init__(self, registry: DynamicModelRegistry) -> None:
        self.driver = 0
        self.sqlalchemy = 0
        database = registry.database
        lend = database.driver_autocommit

        @contextmanager
        def counted() -> Iterator[Any]:
            self.driver += 1
            with lend() as driver:
                yield driver

        database.driver_autocommit = counted  # type: ignore[method-assign]
        sa.event.listen(database.engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.sqlalchemy += 1

    def reset(self) -> None:
        self.driver = self.sqlalchemy = 0


@pytest.fixture
def make_registry(postgres_url: str) -> Iterator[Callable[[], DynamicModelRegistry]]:
    made: list[DynamicModelRegistry] = []

    def make() -> DynamicModelRegistry:
        made.append(DynamicModelRegistry(postgres_url))
        return made[-1]

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def registry(make_registry: Callable[[], DynamicModelRegistry]) -> DynamicModelRegistry:
    registry = make_registry()
    registry.register_model("Order", Order, "cqrs", permissions=PERMISSIONS)
    return registry


def full_path_only(registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.cqrs.executor, "_create_in_one_statement",
                        lambda *_args: None)


def create(registry: DynamicModelRegistry, command_id: str, **data: Any) -> dict[str, Any]:
    return registry.execute_command(
        {"type": "create", "model": "Order", "command_id": command_id,
         "data": {"category": "books", "amount": "5.50", "qty": 2, **data}}, "u1", "clerk",
    )


def stored(registry: DynamicModelRegistry, table: sa.Table, **where: Any) -> dict[str, Any]:
    with registry.database.read() as conn:
        row = conn.execute(sa.select(table).filter_by(**where)).mappings().one()
    return dict(row)


def comparable(value: Any) -> Any:
    """`value` without what differs between two creates of the same data."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in _VARYING}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def test_the_one_statement_create_writes_what_the_full_path_writes(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(registry, "warm")  # the cache learns the registry version its models belong to
    paths = Paths(registry)
    fast = create(registry, "fast")
    assert (paths.driver, paths.sqlalchemy) == (1, 0)  # one statement, nothing else
    full_path_only(registry, monkeypatch)
    full = create(registry, "full")
    assert paths.sqlalchemy > 0
    assert fast.keys() == full.keys() and comparable(fast) == comparable(full)
    assert fast["events"] == [{"type": "created", "version": 1}]
    assert full["position"] > fast["position"]
    answers = {"fast": fast, "full": full}
    rows: dict[str, dict[str, Any]] = {}
    for key, answer in answers.items():
        event = stored(registry, events_table, aggregate_id=answer["aggregate_id"])
        audit = stored(registry, audit_outbox, record_id=answer["aggregate_id"])
        idempotency = stored(registry, idempotency_keys, key=key)
        assert event["position"] == answer["position"]
        assert event["metadata"]["command_id"] == key
        assert idempotency["result"] == answer
        assert (idempotency["model"], idempotency["operation"]) == ("Order", "command")
        rows[key] = {"event": event, "audit": audit}
    assert comparable(rows["fast"]) == comparable(rows["full"])
    assert registry.verify_audit()["ok"] is True
    registry.project()
    records = [registry.read("Order", answer["aggregate_id"], user_role="admin")
               for answer in answers.values()]
    assert comparable(records[0]) == comparable(records[1])


def test_a_repeated_command_id_answers_as_the_first_time(
    registry: DynamicModelRegistry,
) -> None:
    first = create(registry, "again")
    # Different data under the same id: the first answer, nothing appended.
    assert create(registry, "again", qty=9) == first
    # Even data that would now be refused answers as the first command did.
    assert create(registry, "again", qty="many") == first
    with registry.database.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar()
    assert count == 1
    with pytest.raises(ValidationFailed):  # a new id with bad data is refused as always
        create(registry, "new", qty="many")


def test_concurrent_deliveries_of_one_command_id_append_once(
    make_registry: Callable[[], DynamicModelRegistry], registry: DynamicModelRegistry,
) -> None:
    senders = [registry, *[make_registry() for _ in range(3)]]
    for sender in senders:
        create(sender, f"warm {id(sender)}")  # each cache current: each takes the statement
    barrier = threading.Barrier(len(senders))
    answers: list[dict[str, Any]] = []

    def send(sender: DynamicModelRegistry) -> None:
        barrier.wait()
        answers.append(create(sender, "racing"))

    threads = [threading.Thread(target=send, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == len(senders) and all(answer == answers[0] for answer in answers)
    with registry.database.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar()
    assert count == len(senders) + 1  # the warm-ups and one racing create


def test_a_create_on_a_stale_model_is_decided_on_the_current_one(
    make_registry: Callable[[], DynamicModelRegistry], registry: DynamicModelRegistry,
) -> None:
    stale = make_registry()
    create(registry, "before")
    create(stale, "before too")
    other = make_registry()

    class OrderV2(Order):
        note: str = "none"

    other.register_model("Order", OrderV2, "cqrs", permissions=PERMISSIONS)
    paths = Paths(registry)
    answer = create(registry, "after")
    assert paths.driver == 1 and paths.sqlalchemy > 0  # the statement refused; full path
    event = stored(registry, events_table, aggregate_id=answer["aggregate_id"])
    assert event["schema_version"] == 2 and event["data"]["state"]["note"] == "none"
    # A field only the new model has: refused by the cached model, so decided afresh.
    answer = create(stale, "new field", note="fresh")
    event = stored(registry, events_table, aggregate_id=answer["aggregate_id"])
    assert event["data"]["state"]["note"] == "fresh"


def test_a_create_naming_an_existing_aggregate_is_a_conflict(
    registry: DynamicModelRegistry,
) -> None:
    first = create(registry, "one")
    with pytest.raises(VersionConflict):
        registry.execute_command(
            {"type": "create", "model": "Order", "aggregate_id": first["aggregate_id"],
             "data": {"category": "toys"}}, "u1", "clerk",
        )
    named = registry.execute_command(
        {"type": "create", "model": "Order", "aggregate_id": "order-7",
         "data": {"category": "toys"}}, "u1", "clerk",
    )
    assert (named["aggregate_id"], named["version"]) == ("order-7", 1)


def test_hybrid_creates_write_the_row_in_the_same_statement(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry.register_model("Order", Order, "hybrid", permissions=PERMISSIONS)
    create(registry, "h-warm")
    paths = Paths(registry)
    fast = create(registry, "h-fast")
    # BEGIN, the appenders' lock, the statement, COMMIT: the two statements are SQLAlchemy's.
    assert (paths.driver, paths.sqlalchemy) == (0, 2)
    keyed = registry.create("Order", {"category": "toys"}, user_id="u1", user_role="clerk",
                            idempotency_key="h-crud")
    assert registry.create("Order", {"category": "other"}, user_id="u1", user_role="clerk",
                           idempotency_key="h-crud") == keyed
    full_path_only(registry, monkeypatch)
    full = create(registry, "h-full")
    # No projector has run: the rows were written with the events.
    rows = [registry.read("Order", answer["aggregate_id"], user_role="admin")
            for answer in (fast, full)]
    assert comparable(rows[0]) == comparable(rows[1]) and rows[0]["version"] == 1
    assert registry.read("Order", keyed["id"], user_role="admin")["category"] == "toys"
    assert stored(registry, idempotency_keys, key="h-crud")["result"]["id"] == keyed["id"]
    assert registry.verify_audit()["ok"] is True
