"""The audit pipeline on the real PostgreSQL: concurrent compaction with concurrent writers,
commit order against transactions still open, a compaction killed mid-way, and `audit.compact`
run by a real Celery worker on queue `audit`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registry import DynamicModelRegistry, Settings
from registry.audit.blocks import split_lines
from registry.audit.codecs import codec_for
from registry.tables import audit_blocks, audit_outbox

pytestmark = pytest.mark.postgres

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Item(BaseModel):
    name: str
    count: int = 0


def open_registry(url: str, **audit: Any) -> DynamicModelRegistry:
    settings = Settings().with_overrides(
        audit={"batch_size": 40, "max_wait_seconds": 0.001, **audit}
    )
    return DynamicModelRegistry(url, settings=settings)


@pytest.fixture
def registry(postgres_url: str) -> Iterator[DynamicModelRegistry]:
    registry = open_registry(postgres_url)
    registry.register_model("Item", Item)
    yield registry
    registry.close()


def trail(registry: DynamicModelRegistry) -> list[list[dict[str, Any]]]:
    """Every block's entries, in chain order."""
    with registry.database.read() as conn:
        blocks = conn.execute(sa.select(audit_blocks).order_by(audit_blocks.c.id)).mappings()
        return [
            [json.loads(line) for line in split_lines(decompress(b["codec"], b["payload"]))]
            for b in blocks
        ]


def decompress(codec: str, payload: bytes) -> bytes:
    return codec_for(codec).decompress(payload)


def pending_seqs(registry: DynamicModelRegistry) -> list[int]:
    with registry.database.read() as conn:
        query = sa.select(audit_outbox.c.seq).order_by(audit_outbox.c.seq)
        return list(conn.execute(query).scalars())


def wait_until_settled(registry: DynamicModelRegistry, timeout: float = 60.0) -> None:
    """Wait until every transaction that began before now has ended, server-wide.

    Compaction takes only entries below its snapshot's xmin, and xmin covers every database
    on the server: on a server shared with other work, a transaction of someone else's can
    hold back, for a moment, entries that this test already committed."""
    with registry.database.write() as conn:
        mark = conn.execute(sa.text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    xmin = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with registry.database.read() as conn:
            if conn.execute(xmin).scalar_one() > mark:
                return
        time.sleep(0.05)
    pytest.fail("Transactions on the server stayed open for a minute.")


def write_items(
    url: str, writes: list[int], stop: threading.Event, errors: list[BaseException]
) -> None:
    registry = open_registry(url)
    try:
        while not stop.is_set():
            record = registry.create("Item", {"name": "x"}, "writer", "admin")
            for count in range(1, 4):
                registry.update("Item", record["id"], {"count": count}, "writer", "admin")
            writes.append(4)
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)
    finally:
        registry.close()


def compact_forever(url: str, stop: threading.Event, errors: list[BaseException]) -> None:
    registry = open_registry(url)
    try:
        while not stop.is_set():
            registry.audit_logger.compact()
    except BaseException as exc:
        errors.append(exc)
    finally:
        registry.close()


def test_two_compactors_and_four_writers_give_one_ordered_gapless_trail(
    registry: DynamicModelRegistry, postgres_url: str
) -> None:
    stop, errors, writes = threading.Event(), [], []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=write_items, args=(postgres_url, writes, stop, errors))
               for _ in range(4)]
    threads += [threading.Thread(target=compact_forever, args=(postgres_url, stop, errors))
                for _ in range(2)]
    for thread in threads:
        thread.start()
    # Enough writes for a dozen blocks, however slow the machine is today.
    deadline = time.monotonic() + 120
    while sum(writes) < 12 * 40 and time.monotonic() < deadline and not errors:
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    wait_until_settled(registry)
    registry.audit_logger.compact(force=True)

    blocks = trail(registry)
    seqs = [entry["seq"] for block in blocks for entry in block]
    assert len(blocks) > 10 and pending_seqs(registry) == []
    assert len(seqs) == len(set(seqs)) == sum(writes)  # no entry lost, none twice
    for block in blocks:  # each block in seq order
        assert [e["seq"] for e in block] == sorted(e["seq"] for e in block)
    versions: dict[str, list[int]] = {}
    for block in blocks:  # across blocks, each record's changes in commit order
        for entry in block:
            versions.setdefault(entry["record_id"], []).append(entry["metadata"]["version"])
    assert all(found == list(range(1, len(found) + 1)) for found in versions.values())
    assert registry.audit_logger.verify()["ok"] is True
    history = registry.history("Item", next(iter(versions)), user_role="admin")
    assert [e.metadata["version"] for e in history] == [1, 2, 3, 4]


def test_compaction_waits_for_a_transaction_that_took_its_seq_earlier(
    registry: DynamicModelRegistry,
) -> None:
    logger = registry.audit_logger
    with registry.database.write() as slow:
        # This open transaction takes the lower seq, then a later one commits first.
        logger.log_operation("Item", "slow", "create", "u1", {}, connection=slow)
        registry.create("Item", {"name": "fast"}, "u1", "admin")
        assert logger.compact(force=True) == {"blocks": 0, "entries": 0}
    wait_until_settled(registry)
    assert logger.compact(force=True) == {"blocks": 1, "entries": 2}
    [[first, second]] = trail(registry)
    assert first["record_id"] == "slow" and first["seq"] < second["seq"]


KILLED_COMPACTION = """
import sys, time
from registry.audit import trail as audit_trail
from tests.integration.test_audit_postgres import open_registry

def stall(*args):
    print("block inserted", flush=True)
    time.sleep(60)

audit_trail._advance_head = stall
open_registry(sys.argv[1]).audit_logger.compact(force=True)
"""


def test_a_compaction_killed_after_its_block_insert_loses_and_duplicates_nothing(
    registry: DynamicModelRegistry, postgres_url: str
) -> None:
    for i in range(30):
        registry.create("Item", {"name": f"i{i}"}, "u1", "admin")
    before = pending_seqs(registry)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_COMPACTION, postgres_url], cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, start_new_session=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"block inserted\n"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]

    assert trail(registry) == [] and pending_seqs(registry) == before
    wait_until_settled(registry)
    assert registry.audit_logger.compact(force=True) == {"blocks": 1, "entries": 30}
    assert [e["seq"] for e in trail(registry)[0]] == before
    assert registry.audit_logger.verify()["ok"] is True


@pytest.mark.integration
def test_audit_compact_runs_on_a_real_worker_on_queue_audit(
    postgres_url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    from celery import Celery

    from .conftest import WorkerProcess

    registry = open_registry(postgres_url)
    registry.register_model("Item", Item)
    for i in range(25):
        registry.create("Item", {"name": f"i{i}"}, "u1", "admin")
    # A long wait: on a loaded machine the 25 entries must not age into a partial block.
    env = {
        **service_env,
        "DMR_DATABASE_URL": postgres_url,
        "DMR_AUDIT__BATCH_SIZE": "10",
        "DMR_AUDIT__MAX_WAIT_SECONDS": "3600",
    }
    worker = WorkerProcess("audit1@dmrtest", "audit", env, tmp_path / "audit.log").start(1)
    producer = Celery(broker=env["DMR_BROKER_URL"], backend=env["DMR_RESULT_BACKEND"])
    try:
        def call(name: str, **kwargs: Any) -> Any:
            return producer.send_task(name, kwargs=kwargs, queue="audit").get(timeout=60)

        wait_until_settled(registry)
        assert call("audit.compact") == {"blocks": 2, "entries": 20}
        assert call("audit.compact", force=True) == {"blocks": 1, "entries": 5}
        assert call("audit.verify")["ok"] is True
        assert call("audit.stats", model="Item")["blocks"] == 3
        entries = call("audit.history", model="Item", user_role="admin")["entries"]
        assert len(entries) == 25
        assert "Task audit.compact[" in worker.read_log()
    finally:
        worker.stop()
        producer.close()
        registry.close()
