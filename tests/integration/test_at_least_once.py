"""Invariant 3: a worker killed mid-stream loses nothing and duplicates nothing."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tasks.client import RegistryClient

from .conftest import WorkerProcess, send_direct, unique

pytestmark = pytest.mark.integration

CREATES = 2000
#: Records that must exist before the kill, so it lands mid-stream.
KILL_AFTER = 300


def _count(engine: sa.Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def test_sigkill_mid_stream_writes_each_create_once(
    client: RegistryClient, start_worker: object, database_url: str,
    workers: tuple[WorkerProcess, WorkerProcess],
) -> None:
    model = unique("Kill")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    client.register_model(model, schema, user_role="admin").get()
    victim: WorkerProcess = start_worker("victim", queues="crud")  # type: ignore[operator]
    engine = sa.create_engine(database_url)
    table = f"dmr_r_{model.lower()}"
    try:
        handles = [
            send_direct(client, victim, "records.create", model=model, data={"n": i},
                        user_id="t", user_role="admin", idempotency_key=f"{model}-{i}")
            for i in range(CREATES)
        ]
        deadline = time.monotonic() + 60
        while _count(engine, f"SELECT count(*) FROM {table}") < KILL_AFTER:
            assert time.monotonic() < deadline, victim.read_log()[-3000:]
            time.sleep(0.05)
        victim.kill()
        written_at_kill = _count(engine, f"SELECT count(*) FROM {table}")
        assert written_at_kill < CREATES, "the kill came too late to test anything"

        victim.start()  # same node name, so it consumes the same direct queue
        numbers = sorted(handle.get(timeout=180)["n"] for handle in handles)
        assert numbers == list(range(CREATES))
        assert _count(engine, f"SELECT count(*) FROM {table}") == CREATES
        assert _count(engine, f"SELECT count(DISTINCT n) FROM {table}") == CREATES
        assert _count(engine, "SELECT count(*) FROM dmr_audit_outbox WHERE model = :m",
                      m=model) == CREATES
        assert _count(engine, "SELECT count(DISTINCT record_id) FROM dmr_audit_outbox "
                      "WHERE model = :m", m=model) == CREATES
    finally:
        victim.stop()
        engine.dispose()
