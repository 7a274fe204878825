"""One storage contract, run against every backend (SQLite in unit tests, PostgreSQL in
integration tests). A subclass provides `database_url`; each test gets a fresh database."""

from __future__ import annotations

import datetime
import decimal
import enum
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, EmailStr, Field

from registry import (
    AuditIntegrityError,
    DynamicModelRegistry,
    IdempotencyConflict,
    InvalidName,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RecordNotFound,
    SchemaIncompatible,
    Settings,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from registry.audit.blocks import entry_body, json_text
from registry.audit.keys import AuditKeys
from registry.tables import audit_outbox, idempotency_keys
from tests.scale_contract import RecordsAtScale


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Dimensions(BaseModel):
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class Product(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    description: str = ""
    is_active: bool = True


class Everything(BaseModel):
    title: str = Field(min_length=1, max_length=50)
    count: int = Field(ge=0, le=1000)
    ratio: float = 0.5
    amount: decimal.Decimal = Field(max_digits=8, decimal_places=2)
    flag: bool = False
    day: datetime.date
    moment: datetime.datetime
    token: uuid.UUID
    colour: Colour = Colour.RED
    size: Literal["s", "m", "l"] = "m"
    email: EmailStr
    tags: list[str] = []
    labels: set[str] = set()
    attributes: dict[str, int] = {}
    dimensions: Dimensions | None = None
    note: str | None = None


def everything_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Widget",
        "count": 3,
        "amount": "12.50",
        "day": "2026-11-26",
        "moment": "2026-11-26T10:30:00+00:00",
        "token": "5a1f1d1e-8d0c-4b8e-9a51-7a0c2f0e9b11",
        "colour": "green",
        "email": "ada@example.com",
        "tags": ["a", "b"],
        "labels": ["x"],
        "attributes": {"k": 1},
        "dimensions": {"width": 2.0, "height": 3.5},
    }
    data.update(overrides)
    return data


def _body(entry: dict[str, Any]) -> bytes:
    """The bytes an outbox entry's hash covers, as a forger would rebuild them."""
    return entry_body(
        model=entry["model"], record_id=entry["record_id"], operation=entry["operation"],
        user_id=entry["user_id"], ts=entry["ts"], changes_json=json_text(entry["changes"]),
        metadata_json=json_text(entry["metadata"]), ns=entry["ns"],
    )


class IdempotencyRetention:
    """Mixed into the contract: old idempotency keys are purged, recent ones kept."""

    def test_old_idempotency_keys_are_purged(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        now = [datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)]
        registry = make_registry(clock=lambda: now[0])
        registry.register_model("Product", Product)
        registry.create("Product", {"name": "A", "price": 1}, user_role="admin",
                        idempotency_key="old")
        now[0] += datetime.timedelta(days=8)
        registry.create("Product", {"name": "B", "price": 1}, user_role="admin",
                        idempotency_key="new")
        assert registry.purge_idempotency_keys() == 1  # the default keeps 7 days
        with registry.database.read() as conn:
            kept = conn.execute(sa.select(idempotency_keys.c.key)).scalars().all()
        assert kept == ["new"]


class StorageContract(IdempotencyRetention, RecordsAtScale):
    """Subclasses define the `database_url` fixture."""

    @pytest.fixture
    def make_registry(self, database_url: str) -> Callable[..., DynamicModelRegistry]:
        opened: list[DynamicModelRegistry] = []

        def make(**options: Any) -> DynamicModelRegistry:
            registry = DynamicModelRegistry(database_url, **options)
            opened.append(registry)
            return registry

        yield make  # type: ignore[misc]
        for registry in opened:
            registry.close()

    @pytest.fixture
    def registry(self, make_registry: Callable[..., DynamicModelRegistry]) -> DynamicModelRegistry:
        registry = make_registry()
        registry.register_model("Product", Product)
        return registry

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def count(registry: DynamicModelRegistry, table: sa.Table | str) -> int:
        if isinstance(table, str):
            table = registry.model_info(table).records.table
        with registry.database.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def assert_nothing_written(
        self, registry: DynamicModelRegistry, model: str = "Product"
    ) -> None:
        assert self.count(registry, model) == 0
        assert self.count(registry, audit_outbox) == 0

    @staticmethod
    def compaction_refusal(registry: DynamicModelRegistry) -> AuditIntegrityError:
        """Compact until compaction refuses a pending entry. PostgreSQL takes entries only
        once every transaction older than theirs has ended, and the server is shared, so
        that can take a moment."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                registry.audit_logger.compact(force=True)
            except AuditIntegrityError as refused:
                return refused
            time.sleep(0.05)
        pytest.fail("Compaction never refused the forged entry.")

    # -- CRUD ---------------------------------------------------------------------------

    def test_create_read_update_delete(self, registry: DynamicModelRegistry) -> None:
        created = registry.create(
            "Product", {"name": "Laptop", "price": 999.99}, user_id="u1", user_role="admin"
        )
        assert created["name"] == "Laptop" and created["version"] == 1
        assert created["created_by"] == "u1" and created["is_active"] is True
        assert registry.read("Product", created["id"], user_role="user")["price"] == 999.99

        updated = registry.update(
            "Product", created["id"], {"price": 899.0}, user_id="u2", user_role="admin"
        )
        assert updated["price"] == 899.0 and updated["version"] == 2
        assert updated["updated_by"] == "u2"

        deleted = registry.delete("Product", created["id"], user_role="admin")
        assert deleted == {"id": created["id"], "deleted": True, "version": 2}
        with pytest.raises(RecordNotFound, match=created["id"]):
            registry.read("Product", created["id"], user_role="admin")

    def test_every_type_round_trips_through_its_column(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()
        registry.register_model("Everything", Everything)
        created = registry.create("Everything", everything_data(), user_role="admin")
        read = registry.read("Everything", created["id"], user_role="admin")
        assert read == created
        assert read["amount"] == "12.50"
        assert read["day"] == "2026-11-26"
        assert read["moment"].startswith("2026-11-26T10:30:00")
        assert read["token"] == "5a1f1d1e-8d0c-4b8e-9a51-7a0c2f0e9b11"
        assert read["colour"] == "green" and read["size"] == "m"
        assert read["labels"] == ["x"] and read["attributes"] == {"k": 1}
        assert read["dimensions"] == {"width": 2.0, "height": 3.5}
        assert read["note"] is None

    def test_update_validates_the_merged_record_and_a_failure_changes_nothing(
        self, registry: DynamicModelRegistry
    ) -> None:
        created = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        with pytest.raises(ValidationFailed) as caught:
            registry.update("Product", created["id"], {"price": -5}, user_role="admin")
        assert caught.value.errors[0]["loc"] == ["price"]
        assert registry.read("Product", created["id"], user_role="admin") == created
        assert self.count(registry, audit_outbox) == 1

    def test_update_without_changes_writes_nothing(self, registry: DynamicModelRegistry) -> None:
        created = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        same = registry.update("Product", created["id"], {"price": 1.0}, user_role="admin")
        assert same["version"] == 1
        assert self.count(registry, audit_outbox) == 1

    def test_unknown_fields_are_refused_by_name(self, registry: DynamicModelRegistry) -> None:
        with pytest.raises(UnknownField, match="'colour'") as caught:
            registry.create(
                "Product", {"name": "A", "price": 1, "colour": "red"}, user_role="admin"
            )
        assert caught.value.details["fields"] == ["colour"]
        self.assert_nothing_written(registry)

    def test_a_field_the_role_may_not_write_refuses_the_whole_write(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.set_permissions(
            "Product",
            {
                "roles": {"admin": ["create", "read", "update"], "clerk": ["create", "update"]},
                "fields": {"price": {"write_roles": ["admin"]}},
            },
        )
        with pytest.raises(PermissionDenied, match="'clerk' cannot write field 'price'"):
            registry.create("Product", {"name": "A", "price": 2}, user_role="clerk")
        self.assert_nothing_written(registry)
        created = registry.create("Product", {"name": "A", "price": 2}, user_role="admin")
        with pytest.raises(PermissionDenied):
            registry.update("Product", created["id"], {"name": "B", "price": 3}, user_role="clerk")
        assert registry.read("Product", created["id"], user_role="admin")["name"] == "A"

    def test_expected_version_gives_optimistic_concurrency(
        self, registry: DynamicModelRegistry
    ) -> None:
        created = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        registry.update(
            "Product", created["id"], {"name": "B"}, user_role="admin", expected_version=1
        )
        with pytest.raises(VersionConflict, match="version 2, not the expected 1"):
            registry.update(
                "Product", created["id"], {"name": "C"}, user_role="admin", expected_version=1
            )
        with pytest.raises(VersionConflict):
            registry.delete("Product", created["id"], user_role="admin", expected_version=1)
        assert registry.read("Product", created["id"], user_role="admin")["name"] == "B"

    def test_list_pages_filters_and_orders(self, registry: DynamicModelRegistry) -> None:
        for index in range(7):
            registry.create(
                "Product",
                {"name": f"p{index}", "price": float(10 - index), "is_active": index % 2 == 0},
                user_role="admin",
            )
        page = registry.list("Product", user_role="user", page=2, page_size=3, order_by="price")
        assert page["total"] == 7 and page["page"] == 2 and page["page_size"] == 3
        assert [item["price"] for item in page["items"]] == [7.0, 8.0, 9.0]
        active = registry.list(
            "Product", user_role="user", filters={"is_active": True}, order_by="-name"
        )
        assert [item["name"] for item in active["items"]] == ["p6", "p4", "p2", "p0"]
        assert active["total"] == 4
        default = registry.list("Product", user_role="user")
        assert default["page_size"] == Settings().models.default_page_size

    def test_list_refuses_bad_arguments(self, registry: DynamicModelRegistry) -> None:
        with pytest.raises(UnknownField):
            registry.list("Product", user_role="user", filters={"nope": 1})
        with pytest.raises(UnknownField):
            registry.list("Product", user_role="user", order_by="nope")
        with pytest.raises(ValidationFailed, match="Page size"):
            registry.list("Product", user_role="user", page_size=10**6)
        with pytest.raises(ValidationFailed, match="Page must"):
            registry.list("Product", user_role="user", page=0)
        with pytest.raises(ValidationFailed):
            registry.list("Product", user_role="user", filters={"price": "not a number"})

    def test_permissions_are_checked_per_operation(self, registry: DynamicModelRegistry) -> None:
        with pytest.raises(PermissionError, match="'user' cannot create 'Product'"):
            registry.create("Product", {"name": "A", "price": 1.0}, user_role="user")
        created = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        for call in (
            lambda: registry.update("Product", created["id"], {"name": "B"}, user_role="user"),
            lambda: registry.delete("Product", created["id"], user_role="user"),
            lambda: registry.read("Product", created["id"], user_role="guest"),
            lambda: registry.list("Product", user_role="guest"),
        ):
            with pytest.raises(PermissionDenied):
                call()

    def test_masks_apply_to_read_list_and_history(self, registry: DynamicModelRegistry) -> None:
        registry.set_permissions(
            "Product",
            {
                "fields": {
                    "price": {"read_roles": ["admin", "manager"], "mask": "redact"},
                    "description": {"read_roles": ["admin"]},
                }
            },
        )
        created = registry.create(
            "Product", {"name": "A", "price": 5.0, "description": "secret"}, user_role="admin"
        )
        as_user = registry.read("Product", created["id"], user_role="user")
        assert as_user["price"] == "***" and "description" not in as_user
        listed = registry.list("Product", user_role="user")["items"][0]
        assert listed["price"] == "***" and "description" not in listed
        assert registry.read("Product", created["id"], user_role="admin")["price"] == 5.0
        history = registry.history("Product", created["id"], user_role="user")
        assert history[0].changes["price"] == {"old": None, "new": "***"}
        assert "description" not in history[0].changes
        with pytest.raises(PermissionDenied):
            registry.list("Product", user_role="user", order_by="price")
        with pytest.raises(PermissionDenied):
            registry.list("Product", user_role="user", filters={"description": "secret"})

    # -- audit --------------------------------------------------------------------------

    def test_every_change_writes_one_audit_entry_in_order(
        self, registry: DynamicModelRegistry
    ) -> None:
        created = registry.create(
            "Product", {"name": "A", "price": 1.0}, user_id="u1", user_role="admin"
        )
        registry.update("Product", created["id"], {"price": 2.0}, user_id="u2", user_role="admin")
        registry.delete("Product", created["id"], user_id="u3", user_role="admin")
        history = registry.audit_logger.history("Product", created["id"])
        assert [e.operation for e in history] == ["create", "update", "delete"]
        assert [e.user_id for e in history] == ["u1", "u2", "u3"]
        assert history[1].changes == {"price": {"old": 1.0, "new": 2.0}}
        assert history[2].changes["name"] == {"old": "A", "new": None}
        assert all(e.ns == "audit.entries" and e.timestamp.tzinfo is not None for e in history)
        assert history[0].seq is not None and history[0].seq < history[1].seq < history[2].seq

    def test_a_failure_after_the_record_write_leaves_neither_record_nor_entry(
        self, registry: DynamicModelRegistry
    ) -> None:
        engine = registry.database.engine
        logger = registry.audit_logger
        append_row = logger.append_row

        def fail_after_outbox_write(conn: Any, clause: Any, *args: Any) -> None:
            # PostgreSQL writes the record and its entry in one statement: once it ran, both
            # are written in this transaction.
            if isinstance(clause, sa.Insert | sa.Select) and "dmr_audit_outbox" in str(clause):
                raise RuntimeError("injected failure before commit")

        def append_then_fail(conn: Any, **entry: Any) -> None:
            # SQLite writes the entry straight through the driver, after the record row.
            append_row(conn, **entry)
            raise RuntimeError("injected failure before commit")

        sa.event.listen(engine, "after_execute", fail_after_outbox_write)
        logger.append_row = append_then_fail  # type: ignore[method-assign]
        try:
            with pytest.raises(RuntimeError, match="injected"):
                registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        finally:
            sa.event.remove(engine, "after_execute", fail_after_outbox_write)
            del logger.append_row
        self.assert_nothing_written(registry)
        registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        assert self.count(registry, "Product") == 1 and self.count(registry, audit_outbox) == 1

    def test_the_trail_accounts_for_every_record_through_compaction_and_schema_changes(
        self, registry: DynamicModelRegistry
    ) -> None:
        kept = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        gone = registry.create("Product", {"name": "B", "price": 1.0}, user_role="admin")
        registry.update("Product", kept["id"], {"price": 2.0}, user_role="admin")
        registry.audit_logger.compact(force=True)
        registry.delete("Product", gone["id"], user_role="admin")

        class ProductV2(Product):
            sku: str = "none"

        registry.register_model("Product", ProductV2)  # fills sku: audited as "migrate"
        registry.audit_logger.log_operation("Product", kept["id"], "export", "u1", changes={})
        assert registry.verify_audit()["ok"] is True

        table = registry.model_info("Product").records.table
        with registry.database.write() as conn:  # a row removed behind the registry's back
            conn.execute(sa.delete(table).where(table.c.id == kept["id"]))
        report = registry.verify_audit()
        assert report["ok"] is False and report["record"] == ["Product", kept["id"]]

    def test_verify_folds_each_history_and_finds_a_value_changed_behind_its_back(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        registry = make_registry()
        registry.register_model("Everything", Everything)
        kept = registry.create("Everything", everything_data(), user_id="u1", user_role="admin")
        registry.update("Everything", kept["id"], {"count": 4, "labels": ["y", "x"]},
                        user_id="u2", user_role="admin")
        registry.audit_logger.compact(force=True)
        registry.update("Everything", kept["id"], {"amount": "7.25"}, user_role="admin")
        report = registry.verify_audit()  # blocks and pending entries fold to the stored row
        assert report["ok"] is True and report["records"] == 1

        table = registry.model_info("Everything").records.table
        with registry.database.write() as conn:  # the version stays: only the value differs
            conn.execute(sa.update(table).where(table.c.id == kept["id"]).values(count=999))
        report = registry.verify_audit()
        assert report["ok"] is False
        assert report["record"] == ["Everything", kept["id"]] and report["field"] == "count"
        assert "999" in report["reason"] and "4" in report["reason"]

        with registry.database.write() as conn:  # put back; now blame someone else
            conn.execute(sa.update(table).where(table.c.id == kept["id"])
                         .values(count=4, updated_by="mallory"))
        report = registry.verify_audit()
        assert report["ok"] is False and report["field"] == "updated_by"

    def test_verify_refuses_a_pending_entry_rewritten_with_its_hash_made_again(
        self, registry: DynamicModelRegistry
    ) -> None:
        created = registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")
        registry.update("Product", created["id"], {"price": 2.0}, user_role="admin")
        with registry.database.read() as conn:
            entry = conn.execute(
                sa.select(audit_outbox).where(audit_outbox.c.operation == "update")
            ).mappings().one()
        forged = {**entry, "changes": {"price": {"old": 1.0, "new": 3.0}}}
        # What a writer with database access can compute: the body's plain sha256, or an HMAC
        # under a key of their own with the current key's id.
        for attempt in (
            hashlib.sha256(_body(forged)).hexdigest(),
            AuditKeys.generate(registry.audit_logger.keys.current_id).sign(_body(forged)),
        ):
            with registry.database.write() as conn:
                conn.execute(sa.update(audit_outbox).where(audit_outbox.c.seq == entry["seq"])
                             .values(changes=forged["changes"], entry_hash=attempt))
            report = registry.audit_logger.verify()
            assert report["ok"] is False and report["pending_seq"] == entry["seq"]
            refused = self.compaction_refusal(registry)
            assert refused.details["seq"] == entry["seq"]

    def test_log_operation_keeps_the_specification_signature(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.audit_logger.log_operation(
            model_name="Product",
            record_id="r1",
            operation="export",
            user_id="u1",
            changes={},
            metadata={"why": "report"},
        )
        [entry] = registry.audit_logger.history("Product", "r1")
        assert entry.operation == "export" and entry.metadata == {"why": "report"}

    # -- idempotency --------------------------------------------------------------------

    def test_a_repeated_idempotency_key_writes_once(self, registry: DynamicModelRegistry) -> None:
        first = registry.create(
            "Product", {"name": "A", "price": 1.0}, user_role="admin", idempotency_key="k1"
        )
        again = registry.create(
            "Product", {"name": "A", "price": 1.0}, user_role="admin", idempotency_key="k1"
        )
        assert again == first
        assert self.count(registry, "Product") == 1
        assert self.count(registry, audit_outbox) == 1
        assert self.count(registry, idempotency_keys) == 1
        updated = registry.update(
            "Product", first["id"], {"price": 3.0}, user_role="admin", idempotency_key="k2"
        )
        assert (
            registry.update(
                "Product", first["id"], {"price": 3.0}, user_role="admin", idempotency_key="k2"
            )
            == updated
        )
        with pytest.raises(IdempotencyConflict, match="'k1'"):
            registry.delete("Product", first["id"], user_role="admin", idempotency_key="k1")
        assert self.count(registry, audit_outbox) == 2

    def test_a_failed_write_does_not_keep_its_key(self, registry: DynamicModelRegistry) -> None:
        with pytest.raises(ValidationFailed):
            registry.create(
                "Product", {"name": "", "price": 1.0}, user_role="admin", idempotency_key="k"
            )
        created = registry.create(
            "Product", {"name": "A", "price": 1.0}, user_role="admin", idempotency_key="k"
        )
        assert created["name"] == "A"

    # -- definitions --------------------------------------------------------------------

    def test_a_second_registry_loads_the_model_from_the_database(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        first = make_registry()
        first.register_model("Everything", Everything)
        second = make_registry()
        loaded = second.models["Everything"]
        assert loaded is not Everything
        assert list(loaded.model_fields) == list(Everything.model_fields)
        created = second.create("Everything", everything_data(), user_role="admin")
        assert first.read("Everything", created["id"], user_role="admin") == created
        with pytest.raises(ValidationFailed):
            second.create("Everything", everything_data(count=-1), user_role="admin")

    def test_a_registration_is_seen_by_the_next_operation_elsewhere(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        first, second = make_registry(), make_registry()
        with pytest.raises(ModelNotFound, match="'Product' is not registered"):
            second.create("Product", {"name": "A", "price": 1}, user_role="admin")
        first.register_model("Product", Product)
        assert second.create("Product", {"name": "A", "price": 1}, user_role="admin")["name"] == "A"

        class ProductV2(Product):
            sku: str = "none"

        first.register_model("Product", ProductV2)
        created = second.create(
            "Product", {"name": "B", "price": 1, "sku": "X1"}, user_role="admin"
        )
        assert created["sku"] == "X1"
        assert [
            r["sku"] for r in second.list("Product", user_role="admin", order_by="name")["items"]
        ] == ["none", "X1"]

    def test_permissions_persist_with_masks_by_name(
        self, make_registry: Callable[..., DynamicModelRegistry]
    ) -> None:
        first = make_registry()
        first.register_model(
            "Product",
            Product,
            permissions={"fields": {"price": {"read_roles": ["admin"], "mask": "partial"}}},
        )
        second = make_registry()
        rule = second.permissions["Product"].field_permissions["price"]
        assert rule.mask == "partial" and rule.read_roles == {"admin"}
        created = second.create("Product", {"name": "A", "price": 123456.0}, user_role="admin")
        assert second.read("Product", created["id"], user_role="user")["price"] == "****56.0"

    def test_incompatible_changes_are_refused_unless_forced(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.create("Product", {"name": "A", "price": 1.0}, user_role="admin")

        class Renamed(BaseModel):
            title: str
            price: int

        with pytest.raises(SchemaIncompatible, match="name") as caught:
            registry.register_model("Product", Renamed)
        assert "difference" in caught.value.details
        assert registry.model_info("Product").version == 1
        forced = registry.register_model("Product", Renamed, force=True)
        assert forced.version == 2
        columns = set(forced.records.table.c.keys())
        assert {"title", "price"} <= columns and "name" not in columns

    def test_a_tightened_constraint_that_stored_values_break_needs_force(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.create("Product", {"name": "A rather long name", "price": 1.0},
                        user_role="admin")

        class Shorter(BaseModel):
            name: str = Field(min_length=1, max_length=5)
            price: float = Field(gt=0)
            description: str = ""
            is_active: bool = True

        with pytest.raises(SchemaIncompatible, match="1 stored value"):
            registry.register_model("Product", Shorter)
        assert registry.model_info("Product").version == 1

        class Longer(Shorter):
            name: str = Field(min_length=1, max_length=500)

        assert registry.register_model("Product", Longer).version == 2  # loosened: fine
        kept = registry.list("Product", user_role="admin")["items"][0]
        assert kept["name"] == "A rather long name" and kept["price"] == 1.0

    def test_re_registering_the_same_model_is_a_no_op(self, registry: DynamicModelRegistry) -> None:
        assert registry.register_model("Product", Product).version == 1
        assert len(registry.model_history("Product")) == 1

    def test_names_are_validated(self, make_registry: Callable[..., DynamicModelRegistry]) -> None:
        registry = make_registry()
        for bad in ("", "1abc", "drop table;", "a" * 80, "Pro-duct"):
            with pytest.raises(InvalidName):
                registry.register_model(bad, Product)

        class Clashing(BaseModel):
            version: int

        with pytest.raises(InvalidName, match="'version'"):
            registry.register_model("Clashing", Clashing)

        class Keywords(BaseModel):
            select: str
            order: int

        registry.register_model("Keywords", Keywords)  # SQL keywords are quoted, so allowed
        created = registry.create("Keywords", {"select": "x", "order": 1}, user_role="admin")
        assert (
            registry.list("Keywords", user_role="admin", order_by="order", filters={"select": "x"})[
                "items"
            ][0]["id"]
            == created["id"]
        )
        registry.register_model("Product", Product)
        with pytest.raises(InvalidName, match="differs only in case"):
            registry.register_model("PRODUCT", Product)

    def test_bad_data_gives_typed_errors_and_writes_nothing(
        self, registry: DynamicModelRegistry
    ) -> None:
        cases: list[tuple[Any, type[Exception]]] = [
            ({"name": "A"}, ValidationFailed),
            ({"name": "A", "price": "cheap"}, ValidationFailed),
            ({"name": "x" * 101, "price": 1}, ValidationFailed),
            (["not", "a", "dict"], ValidationFailed),
            ({"name": "A", "price": 1, "description": "x" * 2_000_000}, PayloadTooLarge),
            ({"name": "A\x00B", "price": 1}, ValidationFailed),
            ({"name": "\ud800", "price": 1}, ValidationFailed),
        ]
        for data, error in cases:
            with pytest.raises(error):
                registry.create("Product", data, user_role="admin")
        self.assert_nothing_written(registry)
        with pytest.raises(ModelNotFound):
            registry.create("Nope", {}, user_role="admin")

    def test_another_process_loads_an_equivalent_model(
        self, make_registry: Callable[..., DynamicModelRegistry], database_url: str
    ) -> None:
        from tests.unit.test_schema import Product as BroadProduct

        registry = make_registry()
        registry.register_model("Broad", BroadProduct)
        other = subprocess.run(
            [sys.executable, "-c", OTHER_PROCESS, database_url],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        theirs = json.loads(other.stdout)
        ours = trial_outcomes(BroadProduct)
        assert len(ours) > 100
        assert theirs["outcomes"] == json.loads(json.dumps(ours))
        assert registry.read("Broad", theirs["created"], user_role="admin")["name"] == "widget"


def trial_outcomes(model: type[BaseModel]) -> list[list[Any]]:
    """[field, value tried, outcome] for every trial value of the broad schema test model."""
    from tests.unit.test_schema import GOOD_PRODUCT, TRIALS, outcome

    found = []
    for name, values in TRIALS.items():
        for value in values:
            result = outcome(model, {**GOOD_PRODUCT, name: value}, name)
            if isinstance(result, list) and name == "labels":  # a set: its order is arbitrary
                result = sorted(result)
            found.append([name, repr(value), result])
    return found


#: Run in a separate Python process: open the registry database named in argv[1], validate the
#: trial values with the model it loads from there, and create one record.
OTHER_PROCESS = """
import json, sys
from registry import DynamicModelRegistry
from tests.storage_contract import trial_outcomes
from tests.unit.test_schema import GOOD_PRODUCT
registry = DynamicModelRegistry(sys.argv[1])
outcomes = trial_outcomes(registry.models["Broad"])
created = registry.create("Broad", GOOD_PRODUCT, user_role="admin")
print(json.dumps({"outcomes": outcomes, "created": created["id"]}))
"""

