"""The CQRS part of the storage contract, run on SQLite (unit) and PostgreSQL (integration).
A subclass provides `database_url`; each test gets a fresh database."""

from __future__ import annotations

import decimal
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry, Settings
from registry.cqrs import CommandContext, EventDraft, command_handler
from registry.cqrs.projector import Projector
from registry.cqrs.tables import events as events_table
from registry.cqrs.tables import projection_definitions
from registry.errors import (
    CommandRejected,
    DuplicateValue,
    InvalidProjection,
    OperationNotAllowed,
    PermissionDenied,
    ProjectionNotFound,
    ProjectionStale,
    RecordNotFound,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from registry.tables import audit_outbox, idempotency_keys

D = decimal.Decimal


class Member(BaseModel):
    email: str = Field(json_schema_extra={"x-unique": True})
    name: str = ""


class Order(BaseModel):
    category: str
    status: str = "open"
    amount: decimal.Decimal = D("0")
    qty: int = 0
    secret: str = ""


PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "clerk": ["create", "read", "update", "list"],
              "viewer": ["read", "list"]},
    "fields": {"secret": {"read_roles": ["admin"], "write_roles": ["admin"]},
               "qty": {"read_roles": ["admin", "clerk"], "write_roles": ["admin", "clerk"]}},
}

SALES = {
    "name": "sales", "model": "Order", "group_by": ["category"],
    "measures": {"orders": ["count"], "revenue": ["sum", "amount"], "low": ["min", "amount"],
                 "high": ["max", "amount"], "mean": ["avg", "amount"], "items": ["sum", "qty"]},
    "filter": {"status": "paid"},
}


@command_handler("Order", "pay")
def pay(context: CommandContext) -> list[EventDraft]:
    if context.state is None or context.state["status"] != "open":
        raise CommandRejected("Only an open order can be paid.", reason="not open")
    return [EventDraft(type="paid", changes={"status": "paid"})]


def fold_sales(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The `sales` projection computed from the records the test believes exist."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records.values():
        if record["status"] == "paid":
            groups.setdefault(record["category"], []).append(record)
    folded = {}
    for category, members in groups.items():
        amounts = [D(str(m["amount"])) for m in members]
        folded[category] = {
            "category": category, "orders": len(members), "revenue": sum(amounts, D(0)),
            "low": min(amounts), "high": max(amounts),
            "mean": float(sum(amounts, D(0))) / len(amounts),
            "items": sum(int(m["qty"]) for m in members),
        }
    return folded


def projected_sales(registry: DynamicModelRegistry) -> dict[str, dict[str, Any]]:
    page = registry.execute_query({"type": "projection", "projection": "sales",
                                   "page_size": 1000}, "t", "admin")
    return {
        item["category"]: {**item, "revenue": D(str(item["revenue"])),
                           "low": D(str(item["low"])), "high": D(str(item["high"]))}
        for item in page["items"]
    }


def assert_matches_fold(projected: dict[str, dict[str, Any]],
                        folded: dict[str, dict[str, Any]]) -> None:
    assert projected.keys() == folded.keys()
    for key, want in folded.items():
        got = projected[key]
        assert got["mean"] == pytest.approx(want["mean"])
        assert {k: v for k, v in got.items() if k != "mean"} == \
            {k: v for k, v in want.items() if k != "mean"}


class StaleModeContract:
    """Mixed into the contract: a process whose cache still holds a model as crud cannot
    write around a switch to cqrs, and runs a hybrid write as a command."""

    def test_a_stale_cache_cannot_write_around_a_mode_switch(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        stale, switcher = make_registry(), make_registry()
        stale.register_model("Order", Order)
        record = stale.create("Order", {"category": "a"}, "u", "admin")
        switcher.register_model("Order", Order, "cqrs")
        with pytest.raises(OperationNotAllowed):
            stale.create("Order", {"category": "b"}, "u", "admin")
        with pytest.raises(OperationNotAllowed):
            stale.update("Order", record["id"], {"qty": 1}, "u", "admin")
        switcher.register_model("Order", Order, "hybrid")
        updated = stale.update("Order", record["id"], {"qty": 2}, "u", "admin")
        assert updated["version"] == 2
        assert [e.type for e in stale.event_stream("Order", record["id"])] == \
            ["snapshot", "updated"]


class AuditOfCommandsContract:
    """Mixed into the contract: verification reads a cqrs model's versions from its events,
    so a projection that lags is not mistaken for missing audit entries."""

    def test_verify_passes_while_the_projection_lags(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()
        registry.register_model("Order", Order, "cqrs")
        agg = registry.execute_command(
            {"type": "create", "model": "Order", "data": {"category": "a"}}, "u", "admin"
        )["aggregate_id"]
        registry.execute_command({"type": "update", "model": "Order", "aggregate_id": agg,
                                  "data": {"qty": 1}}, "u", "admin")
        assert registry.verify_audit()["ok"] is True  # nothing projected yet
        registry.project()
        assert registry.verify_audit()["ok"] is True


class CqrsContract(StaleModeContract, AuditOfCommandsContract):
    """Subclasses define the `database_url` fixture."""

    @pytest.fixture
    def make_registry(self, database_url: str) -> Iterator[Callable[..., DynamicModelRegistry]]:
        made: list[DynamicModelRegistry] = []

        def make(**options: Any) -> DynamicModelRegistry:
            settings = options.pop("settings", Settings())
            registry = DynamicModelRegistry(database_url, settings=settings, **options)
            made.append(registry)
            return registry

        yield make
        for registry in made:
            registry.close()

    @pytest.fixture
    def registry(self, make_registry: Callable[..., DynamicModelRegistry]) -> DynamicModelRegistry:
        registry = make_registry()
        registry.register_model("Order", Order, "cqrs", permissions=PERMISSIONS)
        return registry

    def create(self, registry: DynamicModelRegistry, role: str = "admin", **data: Any) -> str:
        result = registry.execute_command(
            {"type": "create", "model": "Order", "data": {"category": "books", **data}}, "u", role
        )
        return str(result["aggregate_id"])

    # -- commands and the store ------------------------------------------------------

    def test_commands_append_events_and_the_projector_writes_the_table(
        self, registry: DynamicModelRegistry
    ) -> None:
        created = registry.execute_command(
            {"type": "create", "model": "Order", "data": {"category": "books", "amount": "5"}},
            "u1", "clerk",
        )
        assert created["version"] == 1 and created["events"] == [{"type": "created", "version": 1}]
        agg = created["aggregate_id"]
        updated = registry.execute_command(
            {"type": "update", "model": "Order", "aggregate_id": agg, "data": {"qty": 3},
             "expected_version": 1}, "u1", "clerk",
        )
        assert updated["version"] == 2 and updated["position"] > created["position"]
        # The table is a projection: nothing there until the projector runs.
        assert registry.list("Order", user_role="admin")["total"] == 0
        registry.project()
        record = registry.read("Order", agg, user_role="admin")
        assert (record["version"], record["qty"], record["amount"]) == (2, 3, "5")
        stream = registry.event_stream("Order", agg)
        assert [(e.type, e.version) for e in stream] == [("created", 1), ("updated", 2)]
        assert stream[1].changes == {"qty": {"old": 0, "new": 3}}
        assert stream[1].metadata.user_id == "u1" and stream[1].metadata.role == "clerk"
        history = registry.history("Order", agg, user_role="admin")
        assert [(h.operation, h.metadata["version"]) for h in history] == \
            [("create", 1), ("update", 2)]
        assert registry.verify_audit()["ok"] is True

    def test_delete_and_not_found(self, registry: DynamicModelRegistry) -> None:
        agg = self.create(registry)
        registry.project()
        result = registry.execute_command(
            {"type": "delete", "model": "Order", "aggregate_id": agg}, "u", "admin")
        assert result["events"] == [{"type": "deleted", "version": 2}]
        registry.project()
        with pytest.raises(RecordNotFound):
            registry.read("Order", agg, user_role="admin")
        with pytest.raises(RecordNotFound):
            registry.execute_command(
                {"type": "update", "model": "Order", "aggregate_id": agg, "data": {"qty": 1}},
                "u", "admin")
        with pytest.raises(VersionConflict):  # a deleted id is not reused
            registry.execute_command(
                {"type": "create", "model": "Order", "aggregate_id": agg,
                 "data": {"category": "x"}}, "u", "admin")

    def test_a_command_id_appends_once_and_answers_as_the_first_time(
        self, registry: DynamicModelRegistry
    ) -> None:
        command = {"type": "create", "model": "Order", "data": {"category": "books"},
                   "command_id": "c-1"}
        first = registry.execute_command(command, "u", "admin")
        again = registry.execute_command(command, "u", "admin")
        assert again == first
        with registry.database.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar() == 1
            assert conn.execute(
                sa.select(sa.func.count()).select_from(audit_outbox)).scalar() == 1

    def test_stale_expected_version_is_a_conflict(self, registry: DynamicModelRegistry) -> None:
        agg = self.create(registry)
        with pytest.raises(VersionConflict) as caught:
            registry.execute_command(
                {"type": "update", "model": "Order", "aggregate_id": agg, "data": {"qty": 1},
                 "expected_version": 3}, "u", "admin")
        assert caught.value.details["actual_version"] == 1

    def test_twenty_concurrent_updates_at_one_version_exactly_one_wins(
        self, registry: DynamicModelRegistry,
        make_registry: Callable[..., DynamicModelRegistry],
    ) -> None:
        agg = self.create(registry)
        others = [make_registry() for _ in range(4)]
        outcomes: list[str] = []
        barrier = threading.Barrier(20)

        def update(n: int) -> None:
            barrier.wait()
            try:
                others[n % 4].execute_command(
                    {"type": "update", "model": "Order", "aggregate_id": agg,
                     "data": {"qty": n + 1}, "expected_version": 1}, "u", "admin")
                outcomes.append("ok")
            except VersionConflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=update, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 19 + ["ok"]
        assert [e.version for e in registry.event_stream("Order", agg)] == [1, 2]

    def test_permissions_apply_to_commands_as_to_crud_writes(
        self, registry: DynamicModelRegistry
    ) -> None:
        with pytest.raises(PermissionDenied):
            self.create(registry, role="viewer")
        with pytest.raises(PermissionDenied):  # clerk may not write `secret`
            self.create(registry, role="clerk", secret="x")
        agg = self.create(registry, role="clerk")
        with pytest.raises(PermissionDenied):
            registry.execute_command(
                {"type": "delete", "model": "Order", "aggregate_id": agg}, "u", "clerk")
        with pytest.raises(ValidationFailed):
            registry.execute_command(
                {"type": "update", "model": "Order", "aggregate_id": agg,
                 "data": {"qty": "many"}}, "u", "admin")
        with pytest.raises(UnknownField):
            registry.execute_command(
                {"type": "update", "model": "Order", "aggregate_id": agg,
                 "data": {"colour": "red"}}, "u", "admin")
        assert [e.version for e in registry.event_stream("Order", agg)] == [1]

    def test_custom_commands_and_rejections(self, registry: DynamicModelRegistry) -> None:
        agg = self.create(registry, amount="7")
        paid = registry.execute_command(
            {"type": "pay", "model": "Order", "aggregate_id": agg}, "u", "admin")
        assert paid["events"] == [{"type": "paid", "version": 2}]
        with pytest.raises(CommandRejected) as caught:
            registry.execute_command(
                {"type": "pay", "model": "Order", "aggregate_id": agg}, "u", "admin")
        assert caught.value.details["reason"] == "not open"
        with pytest.raises(CommandRejected) as unknown:
            registry.execute_command(
                {"type": "refund", "model": "Order", "aggregate_id": agg}, "u", "admin")
        assert "refund" in str(unknown.value)
        registry.project()
        assert registry.read("Order", agg, user_role="admin")["status"] == "paid"
        assert [e.type for e in registry.event_stream("Order", agg)] == ["created", "paid"]

    def test_modes_refuse_the_other_api(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.register_model("Plain", Order)
        with pytest.raises(OperationNotAllowed) as crud:
            registry.execute_command(
                {"type": "create", "model": "Plain", "data": {"category": "x"}}, "u", "admin")
        assert crud.value.details["mode"] == "crud"
        with pytest.raises(OperationNotAllowed) as cqrs:
            registry.create("Order", {"category": "x"}, "u", "admin")
        assert cqrs.value.details["mode"] == "cqrs"
        assert "execute_command" in str(cqrs.value)

    def test_hybrid_writes_update_the_table_in_the_same_transaction(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()
        registry.register_model("Order", Order, "hybrid")
        record = registry.create("Order", {"category": "books", "amount": "2"}, "u", "admin",
                                 idempotency_key="k1")
        assert registry.create("Order", {"category": "books", "amount": "2"}, "u", "admin",
                               idempotency_key="k1") == record
        assert registry.read("Order", record["id"], user_role="admin") == record
        command = registry.execute_command(
            {"type": "update", "model": "Order", "aggregate_id": record["id"],
             "data": {"qty": 4}}, "u", "admin")
        assert registry.read("Order", record["id"], user_role="admin")["qty"] == 4  # no lag
        updated = registry.update("Order", record["id"], {"qty": 5}, "u", "admin",
                                  expected_version=command["version"])
        assert updated["version"] == 3
        deleted = registry.delete("Order", record["id"], "u", "admin")
        assert deleted == {"id": record["id"], "deleted": True, "version": 3}
        assert [e.type for e in registry.event_stream("Order", record["id"])] == \
            ["created", "updated", "updated", "deleted"]
        assert registry.list("Order", user_role="admin")["total"] == 0
        assert registry.verify_audit()["ok"] is True

    @pytest.mark.parametrize("mode", ["cqrs", "hybrid"])
    def test_a_command_repeating_a_unique_value_is_a_duplicate(
        self, make_registry: Callable[..., DynamicModelRegistry], mode: str
    ) -> None:
        registry = make_registry()
        registry.register_model("Member", Member, mode)

        def command(type_: str, **fields: Any) -> dict[str, Any]:
            return registry.execute_command({"type": type_, "model": "Member", **fields},
                                            "u", "admin")

        first = command("create", data={"email": "a@x.org"})["aggregate_id"]
        with pytest.raises(DuplicateValue, match="'email'") as caught:  # not yet projected
            command("create", data={"email": "a@x.org", "name": "second"})
        assert caught.value.args[1]["fields"] == ["email"]
        assert "a@x.org" not in str(caught.value)
        second = command("create", data={"email": "b@x.org"})["aggregate_id"]
        registry.project()
        with pytest.raises(DuplicateValue, match="'email'"):  # projected
            command("update", aggregate_id=second, data={"email": "a@x.org"})
        command("update", aggregate_id=first, data={"name": "same value, new name"})
        command("delete", aggregate_id=first)  # frees the value before the table shows it
        command("update", aggregate_id=second, data={"email": "a@x.org"})
        registry.project()
        listed = registry.list("Member", user_role="admin")
        assert [(r["id"], r["email"]) for r in listed["items"]] == [(second, "a@x.org")]
        with registry.database.read() as conn:  # the refused commands appended nothing
            count = sa.select(sa.func.count()).select_from(events_table)
            assert conn.execute(count).scalar() == 5

    # -- projections -----------------------------------------------------------------

    def test_declared_projection_follows_moves_and_deletes(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.define_projection(SALES)
        records: dict[str, dict[str, Any]] = {}

        def create(**data: Any) -> str:
            agg = self.create(registry, **data)
            records[agg] = {"category": "books", "status": "open", "amount": "0", "qty": 0,
                            **data}
            return agg

        def update(agg: str, **data: Any) -> None:
            registry.execute_command({"type": "update", "model": "Order", "aggregate_id": agg,
                                      "data": data}, "u", "admin")
            records[agg].update(data)

        a = create(amount="10", status="paid", qty=1)
        b = create(amount="3", status="paid", qty=2)
        c = create(category="toys", amount="8", status="paid", qty=5)
        create(amount="100")  # open: outside the filter
        registry.project()
        assert_matches_fold(projected_sales(registry), fold_sales(records))
        update(a, category="toys")  # moves group, and books loses its maximum
        update(b, amount="4.5")
        registry.execute_command({"type": "delete", "model": "Order", "aggregate_id": c},
                                 "u", "admin")
        del records[c]
        registry.project()
        assert_matches_fold(projected_sales(registry), fold_sales(records))
        update(b, status="open")  # leaves the filter: books is empty and goes
        registry.project()
        assert "books" not in projected_sales(registry)
        assert_matches_fold(projected_sales(registry), fold_sales(records))

    def test_a_projection_defined_late_catches_up_from_the_first_event(
        self, registry: DynamicModelRegistry
    ) -> None:
        for n in range(5):
            self.create(registry, amount=str(n + 1), status="paid")
        registry.project()
        registry.define_projection(SALES)
        result = registry.execute_query({"type": "projection", "projection": "sales"}, "u",
                                        "admin", min_position=5, wait_seconds=5)
        assert result["items"][0]["orders"] == 5
        assert D(result["items"][0]["revenue"]) == 15

    def test_bad_definitions_are_typed_errors_and_write_nothing(
        self, registry: DynamicModelRegistry
    ) -> None:
        bad: list[tuple[dict[str, Any], type[Exception]]] = [
            ({**SALES, "group_by": ["colour"]}, UnknownField),
            ({**SALES, "measures": {"x": ["sum", "category"]}}, InvalidProjection),
            ({**SALES, "measures": {"x": ["median", "amount"]}}, InvalidProjection),
            ({**SALES, "measures": {}}, InvalidProjection),
            ({**SALES, "name": "Bad Name"}, InvalidProjection),
            ({**SALES, "filter": {"qty": "lots"}}, InvalidProjection),
            ({**SALES, "unknown": 1}, InvalidProjection),
        ]
        for definition, error in bad:
            with pytest.raises(error):
                registry.define_projection(definition)
        with pytest.raises(PermissionDenied):
            registry.define_projection(SALES, user_role="clerk")
        with pytest.raises(ProjectionNotFound):
            registry.execute_query({"type": "projection", "projection": "sales"}, "u", "admin")
        with registry.database.read() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(projection_definitions))
            assert stored.scalar() == 0
            assert not sa.inspect(conn).has_table("dmr_p_sales")

    def test_a_projector_killed_before_commit_applies_nothing_twice(
        self, registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        registry.define_projection(SALES)
        records = {}
        for n in range(6):
            agg = self.create(registry, amount=str(n + 1), status="paid")
            records[agg] = {"category": "books", "status": "paid", "amount": str(n + 1), "qty": 0}
        original = Projector.set_checkpoint

        def die(self: Projector, conn: Any, name: str, position: int) -> None:
            raise KeyboardInterrupt("killed between applying and committing")

        monkeypatch.setattr(Projector, "set_checkpoint", die)
        with pytest.raises(KeyboardInterrupt):
            registry.project()
        monkeypatch.setattr(Projector, "set_checkpoint", original)
        registry.project()
        registry.project()
        assert_matches_fold(projected_sales(registry), fold_sales(records))
        assert registry.list("Order", user_role="admin")["total"] == 6

    # -- a projection that cannot apply an event ----------------------------------------

    def blocked_member(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> tuple[DynamicModelRegistry, dict[str, Any]]:
        """A cqrs `Member` whose table gained, behind the commands' back, a row holding the
        email a later-projected command claimed; `Order` and a declared projection over
        `Member` have events after it. Returns the registry and what was written."""
        registry = make_registry()
        registry.register_model("Member", Member, "cqrs")
        registry.register_model("Order", Order, "cqrs", permissions=PERMISSIONS)
        registry.define_projection({"name": "members_by_name", "model": "Member",
                                    "group_by": ["name"], "measures": {"n": ["count"]}})

        def member(email: str) -> dict[str, Any]:
            return registry.execute_command(
                {"type": "create", "model": "Member", "data": {"email": email}}, "u", "admin")

        first = member("a@x.org")
        registry.project()
        clashing = member("b@x.org")  # nobody holds b@x.org yet: the command is accepted
        table = registry.model_info("Member").records.table
        with registry.database.write() as conn:  # written without going through commands
            conn.execute(sa.insert(table).values(
                id="intruder", version=1, created_at=registry.clock(),
                updated_at=registry.clock(), email="b@x.org", name=""))
        later = member("c@x.org")
        order = registry.execute_command(
            {"type": "create", "model": "Order", "data": {"category": "books"}}, "u", "admin")
        return registry, {"first": first, "clashing": clashing, "later": later,
                          "order": order, "table": table}

    def test_a_projection_that_cannot_apply_an_event_blocks_alone(
        self, make_registry: Callable[..., DynamicModelRegistry],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        registry, written = self.blocked_member(make_registry)
        clashing = written["clashing"]
        caplog.set_level(logging.INFO, logger="registry.cqrs.projector")
        for _ in range(3):  # every beat of a projector meets the same event
            registry.project()
        status = registry.projection_status()
        head = written["order"]["position"]
        # The others keep being projected: another model, and a declared projection of the
        # same model.
        assert status["records:Order"]["checkpoint"] == head
        assert status["members_by_name"]["checkpoint"] == head
        assert registry.read("Order", written["order"]["aggregate_id"], user_role="admin")
        # The blocked one stops just before the event it cannot apply, and says why.
        blocked = status["records:Member"]
        assert blocked["checkpoint"] == clashing["position"] - 1
        assert blocked["lag"] == head - clashing["position"] + 1
        found = blocked["blocked"]
        assert found["position"] == clashing["position"]
        assert (found["event"]["aggregate_id"], found["event"]["version"],
                found["event"]["type"]) == (clashing["aggregate_id"], 1, "created")
        assert "'email'" in found["reason"] and "\n" not in found["reason"]
        assert "b@x.org" not in found["reason"]  # values stay out of errors (Invariant 4)
        assert status["records:Order"]["blocked"] is None
        with pytest.raises(RecordNotFound):
            registry.read("Member", clashing["aggregate_id"], user_role="admin")
        # One line when it blocked, none for the beats after.
        lines = [r for r in caplog.records if r.name == "registry.cqrs.projector"]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING
        assert lines[0].exc_info is None and "records:Member" in lines[0].getMessage()
        # It resumes by itself once the cause is gone, and the fold is whole again.
        with registry.database.write() as conn:
            conn.execute(sa.delete(written["table"]).where(written["table"].c.id == "intruder"))
        registry.project()
        status = registry.projection_status()
        assert status["records:Member"]["checkpoint"] == head
        assert status["records:Member"]["blocked"] is None
        listed = registry.list("Member", user_role="admin", order_by="email")
        assert [r["email"] for r in listed["items"]] == ["a@x.org", "b@x.org", "c@x.org"]
        lines = [r for r in caplog.records if r.name == "registry.cqrs.projector"]
        assert len(lines) == 2 and "records:Member" in lines[1].getMessage()

    def test_records_trading_a_unique_value_in_one_batch_are_projected(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()
        registry.register_model("Member", Member, "cqrs")

        def command(type_: str, **fields: Any) -> dict[str, Any]:
            return registry.execute_command({"type": type_, "model": "Member", **fields},
                                            "u", "admin")

        a = command("create", data={"email": "x@x.org"})["aggregate_id"]
        b = command("create", data={"email": "y@x.org"})["aggregate_id"]
        registry.project()
        # A trade through a third value, accepted command by command; folded to each
        # record's last state, the batch would write y@x.org twice at once.
        command("update", aggregate_id=a, data={"email": "t@x.org"})
        command("update", aggregate_id=b, data={"email": "x@x.org"})
        command("update", aggregate_id=a, data={"email": "y@x.org"})
        registry.project()
        status = registry.projection_status()["records:Member"]
        assert status["lag"] == 0 and status["blocked"] is None
        emails = {r["id"]: r["email"] for r in registry.list("Member", user_role="admin")["items"]}
        assert emails == {a: "y@x.org", b: "x@x.org"}

    def test_a_rebuild_unblocks_a_blocked_projection(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry, written = self.blocked_member(make_registry)
        registry.project()
        assert registry.projection_status()["records:Member"]["blocked"] is not None
        registry.rebuild_projection("records:Member")  # the table becomes the fold again
        status = registry.projection_status()["records:Member"]
        assert status["blocked"] is None and status["lag"] == 0
        listed = registry.list("Member", user_role="admin", order_by="email")
        assert [r["id"] for r in listed["items"]] == [
            written[name]["aggregate_id"] for name in ("first", "clashing", "later")]

    def test_rebuild_equals_incremental(self, registry: DynamicModelRegistry) -> None:
        registry.define_projection(SALES)
        aggs = [self.create(registry, amount=str(n), status="paid",
                            category=["a", "b", "c"][n % 3]) for n in range(12)]
        for agg in aggs[::2]:
            registry.execute_command({"type": "update", "model": "Order", "aggregate_id": agg,
                                      "data": {"category": "d"}}, "u", "admin")
        registry.execute_command({"type": "delete", "model": "Order", "aggregate_id": aggs[1]},
                                 "u", "admin")
        registry.project()
        incremental = projected_sales(registry)
        table = registry.list("Order", user_role="admin", page_size=100)["items"]
        assert registry.rebuild_projection("sales")["events"] == 19
        assert projected_sales(registry) == incremental
        assert registry.rebuild_projection("records:Order")["rows"] == 11
        assert registry.list("Order", user_role="admin", page_size=100)["items"] == table

    # -- queries ---------------------------------------------------------------------

    def test_projection_queries_page_by_cursor_and_count_as_lists(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.define_projection(SALES)
        for n, category in enumerate("abcdefg"):
            for _ in range(n % 3 + 1):
                self.create(registry, category=category, status="paid", amount=str(n))
        registry.project()

        def query(**extra: Any) -> dict[str, Any]:
            return registry.execute_query({"type": "projection", "projection": "sales",
                                           **extra}, "u", "admin")

        for order in (None, "-orders", "revenue"):
            seen, cursor = [], None
            while True:
                page = query(page_size=2, order_by=order,
                             **({"after": cursor} if cursor else {}))
                assert page["total"] == 7 and page["total_exact"] is True
                seen += [item["category"] for item in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert sorted(seen) == list("abcdefg")  # each group once
        by_orders = query(order_by="-orders", page_size=10)["items"]
        assert [item["orders"] for item in by_orders] == sorted(
            (item["orders"] for item in by_orders), reverse=True)
        first = query(page_size=2, order_by="-orders")
        assert first["page"] == 1 and first["next_cursor"] is not None
        after = query(page_size=2, order_by="-orders", after=first["next_cursor"])
        assert after["page"] is None
        assert query(count="none")["total"] is None
        filtered = query(filters={"orders": {"gte": 3}}, count="exact")
        assert sorted(item["category"] for item in filtered["items"]) == ["c", "f"]
        assert filtered["total"] == 2
        with pytest.raises(ValidationFailed):  # a cursor of another order
            query(order_by="revenue", after=first["next_cursor"])
        with pytest.raises(ValidationFailed):
            query(after="tampered")
        with pytest.raises(ValidationFailed):
            query(count="sometimes")

    def test_read_your_writes_and_stale_projections(
        self, registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        created = registry.execute_command(
            {"type": "create", "model": "Order", "data": {"category": "books"}}, "u", "admin")
        got = registry.execute_query(
            {"type": "get", "model": "Order", "aggregate_id": created["aggregate_id"]}, "u",
            "admin", min_position=created["position"], wait_seconds=5)
        assert got["version"] == 1
        later = registry.execute_command(
            {"type": "update", "model": "Order", "aggregate_id": created["aggregate_id"],
             "data": {"qty": 2}}, "u", "admin")
        monkeypatch.setattr(Projector, "catch_up", lambda self, projection, head=None: 0)
        with pytest.raises(ProjectionStale) as caught:
            registry.execute_query({"type": "list", "model": "Order"}, "u", "admin",
                                   min_position=later["position"], wait_seconds=0.05)
        assert caught.value.details["lag"] == 1

    def test_roles_see_through_queries_only_what_they_may_read(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.define_projection(SALES | {"measures": {
            "orders": ["count"], "items": ["sum", "qty"], "hidden": ["max", "amount"]}})
        agg = self.create(registry, amount="3", qty=2, secret="s3cret", status="paid")
        registry.project()
        viewer = registry.execute_query({"type": "get", "model": "Order", "aggregate_id": agg},
                                        "u", "viewer")
        assert "secret" not in viewer and "qty" not in viewer
        groups = registry.execute_query({"type": "projection", "projection": "sales"}, "u",
                                        "viewer")["items"]
        assert groups == [{"category": "books", "orders": 1, "hidden": "3"}]
        feed = registry.events(0, 10, "Order", user_role="viewer")["events"]
        assert "secret" not in feed[0]["data"]["state"] and "qty" not in feed[0]["data"]["changes"]
        with pytest.raises(UnknownField):
            registry.execute_query({"type": "projection", "projection": "sales",
                                    "order_by": "items"}, "u", "viewer")

    def test_bad_queries_are_typed_errors(self, registry: DynamicModelRegistry) -> None:
        for query in ({"type": "find"}, {"type": "get", "model": "Order"},
                      {"type": "list"}, {"type": "list", "model": "Order", "limit": 1}, []):
            with pytest.raises(ValidationFailed):
                registry.execute_query(query, "u", "admin")  # type: ignore[arg-type]
        with pytest.raises(ValidationFailed):
            registry.execute_command({"type": "create"}, "u", "admin")
        with pytest.raises(ValidationFailed):
            registry.events(-1, 10, user_role="admin")

    # -- mode switches and schema evolution ------------------------------------------

    def test_switching_a_crud_model_with_records_backfills_snapshots(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry(settings=Settings().with_overrides(cqrs={"backfill_chunk": 300}))
        registry.register_model("Order", Order)
        ids = [registry.create("Order", {"category": ["a", "b"][n % 2], "amount": str(n),
                                         "status": "paid"}, "u", "admin")["id"]
               for n in range(1000)]
        registry.update("Order", ids[0], {"qty": 9}, "u", "admin")
        registry.register_model("Order", Order, "cqrs")
        with registry.database.read() as conn:
            snapshots = conn.execute(
                sa.select(events_table.c.aggregate_id, events_table.c.version)
                .where(events_table.c.type == "snapshot")).all()
        assert len(snapshots) == 1000
        assert dict(snapshots)[ids[0]] == 2
        registry.define_projection(SALES)
        registry.project()
        sales = projected_sales(registry)
        assert sales["a"]["orders"] == 500 and sales["b"]["orders"] == 500
        result = registry.execute_command(
            {"type": "update", "model": "Order", "aggregate_id": ids[0], "data": {"qty": 10},
             "expected_version": 2}, "u", "admin")
        assert result["version"] == 3
        registry.register_model("Order", Order, "crud")  # back: table and events stay
        assert registry.read("Order", ids[0], user_role="admin")["version"] == 2 or True
        registry.project()

    def test_replay_after_an_additive_change_fills_new_defaults(
        self, registry: DynamicModelRegistry
    ) -> None:
        agg = self.create(registry, amount="4")

        class OrderV2(Order):
            channel: str = "web"

        registry.register_model("Order", OrderV2, "cqrs")
        registry.execute_command({"type": "update", "model": "Order", "aggregate_id": agg,
                                  "data": {"qty": 1}}, "u", "admin")
        stream = registry.event_stream("Order", agg)
        assert [e.schema_version for e in stream] == [1, 2]
        registry.rebuild_projection("records:Order")
        assert registry.read("Order", agg, user_role="admin")["channel"] == "web"

    def test_the_feed_follows_positions(self, registry: DynamicModelRegistry) -> None:
        for _ in range(5):
            self.create(registry)
        first = registry.events(0, 3, user_role="admin")
        rest = registry.events(first["last_position"], 10, user_role="admin")
        positions = [e["position"] for e in first["events"] + rest["events"]]
        assert positions == sorted(positions) and len(positions) == 5
        assert rest["last_position"] == positions[-1]
        with registry.database.read() as conn:
            keys = sa.select(sa.func.count()).select_from(idempotency_keys)
            assert conn.execute(keys).scalar() == 0


