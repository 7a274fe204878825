"""Invariant 3 on a Redis broker: what a killed worker had taken is delivered again.

Redis has no acknowledgements: kombu keeps taken messages aside and puts them back once they
are older than the visibility timeout, which settings make short here. kombu takes a message
off the queue (BRPOP) before it sets it aside, so a kill in between loses that one message:
its `.get()` times out, and `resend()` sends it again with the same idempotency key. Either
way, every create ends as exactly one record with one audit entry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from celery.exceptions import TimeoutError as CeleryTimeout

from registry.settings import Settings
from tasks.client import RegistryClient, TaskHandle

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

REDIS_BROKER = os.environ.get("DMR_TEST_REDIS_BROKER_URL", "redis://127.0.0.1:6379/9")
CREATES = 600
KILL_AFTER = 100
#: Seconds to wait for results after the restart: well past the visibility timeout (3 s)
#: and its restore sweep (1 s).
RECOVERY_SECONDS = 30


@pytest.fixture
def redis_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    broker = redis.Redis.from_url(REDIS_BROKER)
    broker.flushdb()
    yield {
        **service_env,
        "DMR_BROKER_URL": REDIS_BROKER,
        "DMR_CELERY__VISIBILITY_TIMEOUT": "3",
    }
    broker.flushdb()
    broker.close()


def count(engine: sa.Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def collect(handles: list[TaskHandle]) -> tuple[list[int], list[TaskHandle]]:
    """The created numbers, and the handles whose message never arrived."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    numbers, lost = [], []
    for handle in handles:
        try:
            numbers.append(handle.get(timeout=max(0.1, deadline - time.monotonic()))["n"])
        except CeleryTimeout:
            lost.append(handle)
    return numbers, lost


def test_a_killed_worker_loses_nothing_on_redis(
    redis_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    client = RegistryClient.from_settings(Settings.load(environ=redis_env))
    worker = WorkerProcess("redis@dmrtest", "registry,crud", redis_env, tmp_path / "w.log")
    engine = sa.create_engine(database_url)
    model = unique("RedisKill")
    table = f"dmr_r_{model.lower()}"
    try:
        worker.start()
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        client.register_model(model, schema, user_role="admin").get()
        handles = [
            client.create(model, {"n": i}, user_id="t", user_role="admin",
                          idempotency_key=f"{model}-{i}")
            for i in range(CREATES)
        ]
        deadline = time.monotonic() + 60
        while count(engine, f"SELECT count(*) FROM {table}") < KILL_AFTER:
            assert time.monotonic() < deadline, worker.read_log()[-3000:]
            time.sleep(0.02)
        worker.kill()
        assert count(engine, f"SELECT count(*) FROM {table}") < CREATES

        worker.start()
        numbers, lost = collect(handles)
        assert len(lost) <= 2, "more lost than one worker with two pool children can hold"
        again, lost_again = collect([handle.resend() for handle in lost])
        assert lost_again == []
        assert sorted(numbers + again) == list(range(CREATES))
        assert count(engine, f"SELECT count(*) FROM {table}") == CREATES
        assert count(engine, "SELECT count(*) FROM dmr_audit_outbox WHERE model = :m",
                     m=model) == CREATES
    finally:
        worker.stop()
        client.close()
        engine.dispose()
