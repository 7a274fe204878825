"""The audit pipeline on SQLite: compaction, history, point in time, verify, retention, stats."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, Field

from registry import (
    AuditIntegrityError,
    ConfigurationError,
    DynamicModelRegistry,
    PermissionDenied,
    RecordNotFound,
    Settings,
)
from registry.audit import trail as audit_trail
from registry.audit.blocks import GENESIS_HASH, KeyFilter, record_key, split_lines
from registry.audit.codecs import codec_for
from registry.tables import audit_blocks, audit_chain, audit_outbox
from tests.unit.support import SteppingClock


class Product(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    secret: str = ""


class Order(BaseModel):
    total: float = 0



PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"], "user": ["read", "list"]},
    "fields": {"price": {"read_roles": ["admin"], "mask": "redact"},
               "secret": {"read_roles": ["admin"]}},
}


def make_registry(clock: SteppingClock, **audit: Any) -> DynamicModelRegistry:
    models = audit.pop("models", {})
    settings = Settings().with_overrides(
        audit={"batch_size": 3, "max_wait_seconds": 5.0, **audit}, models=models
    )
    registry = DynamicModelRegistry(settings=settings, clock=clock)
    registry.register_model("Product", Product, permissions=PERMISSIONS)
    registry.register_model("Order", Order)
    return registry


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def registry(clock: SteppingClock) -> Iterator[DynamicModelRegistry]:
    registry = make_registry(clock)
    yield registry
    registry.close()


def create(registry: DynamicModelRegistry, n: int = 1, user: str = "u1") -> list[str]:
    return [
        registry.create("Product", {"name": f"p{i}", "price": 1.0 + i, "secret": "s"},
                        user_id=user, user_role="admin")["id"]
        for i in range(n)
    ]


def rows(registry: DynamicModelRegistry, table: sa.Table) -> list[Any]:
    with registry.database.read() as conn:
        key = next(iter(table.primary_key.columns))
        return list(conn.execute(sa.select(table).order_by(key)).mappings())


def execute(registry: DynamicModelRegistry, statement: Any) -> None:
    with registry.database.write() as conn:
        conn.execute(statement)


def block_seqs(registry: DynamicModelRegistry) -> list[list[int]]:
    found = []
    for row in rows(registry, audit_blocks):
        raw = codec_for(row["codec"]).decompress(row["payload"])
        found.append([json.loads(line)["seq"] for line in split_lines(raw)])
    return found


# -- compaction ----------------------------------------------------------------------------


def test_compaction_moves_pending_entries_into_ordered_chained_blocks(
    registry: DynamicModelRegistry,
) -> None:
    create(registry, 7)
    pending = [row["seq"] for row in rows(registry, audit_outbox)]

    result = registry.audit_logger.compact(force=True)

    assert result == {"blocks": 3, "entries": 7}
    assert rows(registry, audit_outbox) == []
    assert sum(block_seqs(registry), []) == pending
    assert [len(seqs) for seqs in block_seqs(registry)] == [3, 3, 1]
    blocks = rows(registry, audit_blocks)
    assert [b["prev_hash"] for b in blocks] == [GENESIS_HASH] + [b["hash"] for b in blocks[:-1]]
    assert {b["codec"] for b in blocks} == {"zlib"}
    [chain] = rows(registry, audit_chain)
    assert chain["head_hash"] == blocks[-1]["hash"] and chain["head_block_id"] == blocks[-1]["id"]
    assert registry.audit_logger.verify()["ok"] is True


def test_a_part_filled_batch_waits_for_max_wait(
    registry: DynamicModelRegistry, clock: SteppingClock
) -> None:
    create(registry, 2)
    assert registry.audit_logger.compact() == {"blocks": 0, "entries": 0}
    clock.advance(seconds=6)
    assert registry.audit_logger.compact() == {"blocks": 1, "entries": 2}


def test_a_full_batch_is_compacted_at_once_and_the_rest_waits(
    registry: DynamicModelRegistry,
) -> None:
    create(registry, 4)
    assert registry.audit_logger.compact() == {"blocks": 1, "entries": 3}
    assert len(rows(registry, audit_outbox)) == 1


def test_one_run_writes_at_most_max_blocks_per_run(clock: SteppingClock) -> None:
    registry = make_registry(clock, batch_size=2, max_blocks_per_run=2)
    create(registry, 7)
    assert registry.audit_logger.compact(force=True) == {"blocks": 2, "entries": 4}
    assert registry.audit_logger.compact(force=True) == {"blocks": 2, "entries": 3}


def test_a_failure_after_the_block_insert_loses_and_duplicates_nothing(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(registry, 3)
    before = rows(registry, audit_outbox)

    def crash(*args: Any) -> None:
        raise RuntimeError("the audit worker died before commit")

    monkeypatch.setattr(audit_trail, "_advance_head", crash)
    with pytest.raises(RuntimeError):
        registry.audit_logger.compact(force=True)
    assert rows(registry, audit_blocks) == [] and rows(registry, audit_outbox) == before
    assert registry.audit_logger.verify()["ok"] is True

    monkeypatch.undo()
    assert registry.audit_logger.compact(force=True) == {"blocks": 1, "entries": 3}
    assert sum(block_seqs(registry), []) == [row["seq"] for row in before]
    assert registry.audit_logger.verify()["ok"] is True


def test_compression_off_keeps_plain_json_lines_still_chained(clock: SteppingClock) -> None:
    registry = make_registry(clock, models={"audit_compression": False})
    ids = create(registry, 4)
    registry.audit_logger.compact(force=True)

    blocks = rows(registry, audit_blocks)
    assert {b["codec"] for b in blocks} == {"none"}
    first = json.loads(split_lines(blocks[0]["payload"])[0])
    assert first["record_id"] == ids[0] and first["changes"]["name"]["new"] == "p0"
    assert blocks[1]["prev_hash"] == blocks[0]["hash"]
    assert registry.audit_logger.verify()["ok"] is True


def test_blocks_of_different_codecs_read_as_one_history(clock: SteppingClock) -> None:
    registry = make_registry(clock)
    [record_id] = create(registry)
    registry.audit_logger.compact(force=True)
    registry.audit_logger.settings = registry.settings.audit.model_copy(update={"codec": "zstd"})
    registry.update("Product", record_id, {"name": "renamed"}, user_id="u2", user_role="admin")
    registry.audit_logger.compact(force=True)

    assert [b["codec"] for b in rows(registry, audit_blocks)] == ["zlib", "zstd"]
    history = registry.history("Product", record_id, user_role="admin")
    assert [e.operation for e in history] == ["create", "update"]
    assert registry.audit_logger.verify()["ok"] is True


def test_the_codec_and_level_are_checked() -> None:
    assert codec_for("zstd").level == 3 and codec_for("zlib", 9).level == 9
    with pytest.raises(ConfigurationError, match="brotli"):
        codec_for("brotli")
    with pytest.raises(ConfigurationError, match="level 30"):
        codec_for("zlib", 30)
    data = b'{"a":1}\n' * 100
    for name in ("none", "zlib", "zstd"):
        assert codec_for(name).decompress(codec_for(name).compress(data)) == data
    with pytest.raises(AuditIntegrityError):
        codec_for("zlib").decompress(b"not zlib")


def test_the_key_filter_never_misses_a_key() -> None:
    keys = [record_key("Product", f"id-{i}") for i in range(500)]
    key_filter = KeyFilter.of(keys)
    assert all(key_filter.may_contain(key) for key in keys)
    misses = sum(key_filter.may_contain(record_key("Product", f"other-{i}")) for i in range(2000))
    assert misses < 100  # about 1% false positives by design


# -- history -------------------------------------------------------------------------------


def test_history_reads_blocks_and_pending_entries_as_one_stream(
    registry: DynamicModelRegistry,
) -> None:
    [record_id] = create(registry)
    for price in (5.0, 6.0, 7.0):
        registry.update("Product", record_id, {"price": price}, user_id="u1", user_role="admin")
    before = registry.history("Product", record_id, user_role="admin")

    registry.audit_logger.compact()  # one full block; one entry stays pending
    registry.update("Product", record_id, {"price": 8.0}, user_id="u1", user_role="admin")
    after = registry.history("Product", record_id, user_role="admin")

    assert len(rows(registry, audit_blocks)) == 1 and len(rows(registry, audit_outbox)) == 2
    assert after[:4] == before
    assert [e.metadata["version"] for e in after] == [1, 2, 3, 4, 5]
    assert [e.changes["price"]["new"] for e in after[1:]] == [5.0, 6.0, 7.0, 8.0]


def test_history_by_model_time_range_and_actor(
    registry: DynamicModelRegistry, clock: SteppingClock
) -> None:
    first = create(registry, 2, user="alice")
    clock.advance(hours=1)
    middle = clock.now
    second = create(registry, 2, user="bob")
    registry.create("Order", {"total": 3}, user_id="alice", user_role="admin")
    registry.audit_logger.compact(force=True)
    third = create(registry, 1, user="alice")  # pending

    def ids(**query: Any) -> list[str]:
        return [e.record_id for e in registry.history("Product", user_role="admin", **query)]

    assert ids() == first + second + third
    assert ids(since=middle) == second + third
    assert ids(until=middle) == first
    assert ids(actor="alice") == first + third
    assert ids(actor="bob", since=middle) == second
    assert ids(actor="nobody") == []
    assert [e.model_name for e in registry.history("Order", user_role="admin")] == ["Order"]


def test_history_masks_old_and_new_values_for_the_reading_role(
    registry: DynamicModelRegistry,
) -> None:
    [record_id] = create(registry)
    registry.update("Product", record_id, {"price": 9.5, "secret": "t"},
                    user_id="u1", user_role="admin")
    registry.audit_logger.compact(force=True)
    registry.update("Product", record_id, {"price": 10.5}, user_id="u1", user_role="admin")

    as_user = registry.history("Product", record_id, user_role="user")
    as_admin = registry.history("Product", record_id, user_role="admin")

    assert as_admin[1].changes["price"] == {"old": 1.0, "new": 9.5}
    assert as_admin[1].changes["secret"] == {"old": "s", "new": "t"}
    for entry in as_user:
        assert entry.changes["price"] == {"old": None if entry.operation == "create" else "***",
                                          "new": "***"}
        assert "secret" not in entry.changes
    with pytest.raises(PermissionDenied):
        registry.history("Product", record_id, user_role="guest")


# -- point in time -------------------------------------------------------------------------


def test_as_of_rebuilds_a_record_at_any_time_even_after_deletion(
    registry: DynamicModelRegistry, clock: SteppingClock
) -> None:
    before_creation = clock.now
    [record_id] = create(registry)
    created = registry.read("Product", record_id, user_role="admin")
    clock.advance(minutes=1)
    after_create = clock.now
    clock.advance(minutes=1)
    updated = registry.update("Product", record_id, {"price": 4.0}, user_id="u2",
                              user_role="admin")
    registry.audit_logger.compact(force=True)
    clock.advance(minutes=1)
    after_update = clock.now
    clock.advance(minutes=1)
    registry.delete("Product", record_id, user_id="u3", user_role="admin")

    then = registry.as_of("Product", record_id, after_create, user_role="admin")
    assert {k: then[k] for k in ("id", "version", "name", "price", "secret", "created_by")} == {
        k: created[k] for k in ("id", "version", "name", "price", "secret", "created_by")}
    later = registry.as_of("Product", record_id, after_update, user_role="admin")
    assert later["price"] == 4.0 and later["version"] == updated["version"] == 2
    assert later["updated_by"] == "u2" and later["created_by"] == "u1"
    assert list(later) == list(updated)
    masked = registry.as_of("Product", record_id, after_update, user_role="user")
    assert masked["price"] == "***" and "secret" not in masked
    with pytest.raises(RecordNotFound):
        registry.as_of("Product", record_id, before_creation, user_role="admin")
    with pytest.raises(RecordNotFound):
        registry.as_of("Product", record_id, clock.now, user_role="admin")  # deleted by then
    with pytest.raises(PermissionDenied):
        registry.as_of("Product", record_id, after_update, user_role="guest")


# -- verification --------------------------------------------------------------------------


def compacted(registry: DynamicModelRegistry, entries: int = 9) -> list[Any]:
    create(registry, entries)
    registry.audit_logger.compact()  # full blocks only; the rest stays pending
    return rows(registry, audit_blocks)


def test_verify_reports_a_sound_trail(registry: DynamicModelRegistry) -> None:
    compacted(registry, 8)
    report = registry.audit_logger.verify()
    assert report["ok"] is True
    assert (report["blocks"], report["entries"], report["pending"]) == (2, 6, 2)


def test_verify_detects_an_altered_block_payload(registry: DynamicModelRegistry) -> None:
    blocks = compacted(registry)
    raw = zlib.decompress(blocks[1]["payload"]).replace(b'"p4"', b'"p5"')
    execute(registry, sa.update(audit_blocks).where(audit_blocks.c.id == blocks[1]["id"])
            .values(payload=zlib.compress(raw)))
    report = registry.audit_logger.verify()
    assert report["ok"] is False and report["block_id"] == blocks[1]["id"]
    assert "does not match its hash" in report["reason"]
    with pytest.raises(AuditIntegrityError, match="does not match its hash"):
        registry.audit_logger.require_intact()


def test_verify_detects_an_altered_block_index(registry: DynamicModelRegistry) -> None:
    blocks = compacted(registry)
    execute(registry, sa.update(audit_blocks).where(audit_blocks.c.id == blocks[0]["id"])
            .values(model_names=",Order,"))
    report = registry.audit_logger.verify()
    assert report["ok"] is False and report["block_id"] == blocks[0]["id"]


def test_verify_detects_a_block_deleted_in_the_middle(registry: DynamicModelRegistry) -> None:
    blocks = compacted(registry)
    execute(registry, sa.delete(audit_blocks).where(audit_blocks.c.id == blocks[1]["id"]))
    report = registry.audit_logger.verify()
    assert report["ok"] is False and report["block_id"] == blocks[2]["id"]
    assert "missing or was changed" in report["reason"]


def test_verify_detects_the_newest_block_deleted(registry: DynamicModelRegistry) -> None:
    blocks = compacted(registry)
    execute(registry, sa.delete(audit_blocks).where(audit_blocks.c.id == blocks[-1]["id"]))
    report = registry.audit_logger.verify()
    assert report["ok"] is False and "newest blocks are missing" in report["reason"]


def test_verify_detects_an_altered_pending_entry_and_compaction_refuses_it(
    registry: DynamicModelRegistry,
) -> None:
    create(registry, 2)
    [first, second] = rows(registry, audit_outbox)
    changes = {**second["changes"], "price": {"old": None, "new": 0.01}}
    execute(registry, sa.update(audit_outbox).where(audit_outbox.c.seq == second["seq"])
            .values(changes=changes))

    report = registry.audit_logger.verify()
    assert report == {"ok": False, "pending_seq": second["seq"], "reason": report["reason"],
                      "key_id": registry.audit_logger.keys.current_id}
    with pytest.raises(AuditIntegrityError, match=f"entry {second['seq']}"):
        registry.audit_logger.compact(force=True)
    assert rows(registry, audit_blocks) == [] and len(rows(registry, audit_outbox)) == 2


def test_an_entry_logged_by_the_specification_api_verifies(
    registry: DynamicModelRegistry,
) -> None:
    registry.audit_logger.log_operation("Product", "r1", "create", "u1",
                                        {"name": {"old": None, "new": "x"}}, {"k": 1})
    assert registry.audit_logger.verify()["ok"] is True
    registry.audit_logger.compact(force=True)
    [entry] = registry.audit_logger.history("Product", "r1")
    assert entry.changes == {"name": {"old": None, "new": "x"}} and entry.metadata == {"k": 1}
    assert registry.audit_logger.verify()["ok"] is True


# -- retention and statistics --------------------------------------------------------------


def test_purge_drops_old_blocks_and_what_remains_verifies(clock: SteppingClock) -> None:
    registry = make_registry(clock, models={"audit_retention_days": 30})
    old = create(registry, 6)
    registry.audit_logger.compact(force=True)
    clock.advance(days=20)
    create(registry, 3)
    registry.audit_logger.compact(force=True)
    clock.advance(days=15)  # the first two blocks are now 35 days old, the third 15
    blocks = rows(registry, audit_blocks)

    result = registry.audit_logger.purge()

    assert result == {"blocks": 2, "entries": 6, "batches": 0, "anchor_hash": blocks[1]["hash"]}
    assert [b["id"] for b in rows(registry, audit_blocks)] == [blocks[2]["id"]]
    report = registry.audit_logger.verify()
    assert report["ok"] is True and report["anchor_hash"] == blocks[1]["hash"]
    assert (report["purged_blocks"], report["purged_entries"]) == (2, 6)
    assert registry.history("Product", old[0], user_role="admin") == []
    assert registry.audit_logger.purge() == {"blocks": 0, "entries": 0, "batches": 0,
                                             "anchor_hash": blocks[1]["hash"]}

    create(registry, 3)  # the chain goes on from the purged prefix
    registry.audit_logger.compact(force=True)
    assert registry.audit_logger.verify()["ok"] is True
    execute(registry, sa.delete(audit_blocks).where(audit_blocks.c.id == blocks[2]["id"]))
    assert registry.audit_logger.verify()["ok"] is False


def test_purge_of_every_block_leaves_a_verifiable_empty_chain(clock: SteppingClock) -> None:
    registry = make_registry(clock, models={"audit_retention_days": 1})
    create(registry, 4)
    registry.audit_logger.compact(force=True)
    clock.advance(days=2)
    assert registry.audit_logger.purge()["blocks"] == 2
    report = registry.audit_logger.verify()
    assert report["ok"] is True and report["blocks"] == 0 and report["purged_entries"] == 4


def test_stats_count_entries_blocks_pending_and_bytes(registry: DynamicModelRegistry) -> None:
    assert registry.audit_logger.stats() == {
        "entries": 0, "blocks": 0, "pending": 0, "raw_bytes": 0, "stored_bytes": 0}
    create(registry, 5)
    registry.create("Order", {"total": 1}, user_id="u1", user_role="admin")
    registry.audit_logger.compact()  # two full blocks of three
    create(registry, 1)

    everything = registry.audit_logger.stats()
    blocks = rows(registry, audit_blocks)
    assert everything == {
        "entries": 7, "blocks": 2, "pending": 1,
        "raw_bytes": sum(b["raw_bytes"] for b in blocks),
        "stored_bytes": sum(len(b["payload"]) for b in blocks),
    }
    product, order = registry.audit_logger.stats("Product"), registry.audit_logger.stats("Order")
    assert (product["entries"], product["blocks"], product["pending"]) == (6, 2, 1)
    assert (order["entries"], order["blocks"], order["pending"]) == (1, 1, 0)
    assert product["raw_bytes"] + order["raw_bytes"] == everything["raw_bytes"]
    assert abs(product["stored_bytes"] + order["stored_bytes"] - everything["stored_bytes"]) <= 1


def test_pending_at_least_reads_a_bounded_count(registry: DynamicModelRegistry) -> None:
    create(registry, 3)
    assert registry.audit_logger.pending_at_least(3)
    assert not registry.audit_logger.pending_at_least(4)


def test_seq_keeps_growing_after_compaction_empties_the_outbox(
    registry: DynamicModelRegistry,
) -> None:
    create(registry, 3)
    registry.audit_logger.compact(force=True)
    assert rows(registry, audit_outbox) == []
    create(registry, 1)
    [pending] = rows(registry, audit_outbox)
    assert pending["seq"] == 4  # never a seq that a block already holds
