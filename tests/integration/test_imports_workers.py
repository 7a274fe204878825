"""Imports through real workers: bad rows, a worker killed mid-chunk, the broker dropping every
connection, and the producer killed mid-send and run again. Each ends with every row accounted
for, none lost and none written twice."""

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

from tasks.client import RegistryClient
from tests.import_contract import FIELD_MAP, PERMISSIONS, Person, good_row, write_csv

from .conftest import PROJECT_ROOT, WorkerProcess, _rabbitmqctl, unique

pytestmark = pytest.mark.integration

#: Every BAD_EVERY-th row has an age that is not a number.
BAD_EVERY = 97


def people_csv(path: Path, rows: int) -> Path:
    data = [good_row(i) for i in range(1, rows + 1)]
    for i in range(BAD_EVERY - 1, rows, BAD_EVERY):
        data[i][1] = "old"
    return write_csv(path, data)


def expected_bad(rows: int) -> int:
    return rows // BAD_EVERY


def count(engine: sa.Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


@pytest.fixture(scope="module")
def import_worker(start_worker: Any, workers: Any) -> WorkerProcess:
    worker: WorkerProcess = start_worker("imp", queues="imports")
    return worker


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def model(client: RegistryClient) -> str:
    name = unique("Person")
    client.register_model(name, Person, permissions=PERMISSIONS, user_role="admin").get()
    return name


def assert_accounted(
    engine: sa.Engine, status: dict[str, Any], model: str, rows: int
) -> None:
    """Every row once: done plus rejected is the rows read, the table holds done records with
    distinct ids, and each chunk has one mark and one audit entry."""
    bad = expected_bad(rows)
    assert status["state"] == "finished", status
    assert (status["total"], status["done"], status["rejected"]) == (rows, rows - bad, bad)
    table = f"dmr_r_{model.lower()}"
    assert count(engine, f"SELECT count(*) FROM {table}") == rows - bad
    assert count(engine, f"SELECT count(DISTINCT name) FROM {table}") == rows - bad
    job = status["job_id"]
    assert count(engine, "SELECT count(*) FROM dmr_import_rejects WHERE job_id = :j", j=job) == bad
    chunks = status["chunk_count"]
    assert count(engine, "SELECT count(*) FROM dmr_import_chunks WHERE job_id = :j", j=job) == (
        chunks)
    assert count(engine, "SELECT count(*) FROM dmr_audit_outbox WHERE model = :m "
                 "AND operation = 'create_batch'", m=model) == chunks


def wait_for(engine: sa.Engine, sql: str, at_least: int, worker: WorkerProcess, **p: Any) -> None:
    deadline = time.monotonic() + 90
    while count(engine, sql, **p) < at_least:
        assert time.monotonic() < deadline, worker.read_log()[-3000:]
        time.sleep(0.05)


def test_import_through_the_workers_with_bad_rows(
    client: RegistryClient, import_worker: WorkerProcess, model: str, engine: sa.Engine,
    tmp_path: Path,
) -> None:
    source = people_csv(tmp_path / "people.csv", 1500)
    seen: list[dict[str, Any]] = []
    status = client.import_records(
        model, source, user_id="loader", user_role="admin", field_map=FIELD_MAP,
        options={"chunk_size": 200}, progress=seen.append, timeout=120,
    )
    assert_accounted(engine, status, model, 1500)
    assert any("sent" in s for s in seen) and seen[-1]["state"] == "finished"
    rejects = client.import_rejects(status["job_id"], "clerk", page=1, page_size=5).get()
    assert rejects["total"] == expected_bad(1500)
    assert [item["row"] for item in rejects["items"]][:2] == [BAD_EVERY, 2 * BAD_EVERY]
    assert rejects["items"][0]["values"]["email"] != f"p{BAD_EVERY}@example.com"  # masked
    record = client.list(model, "u", "admin", page_size=1).get()["items"][0]
    history = client.history(model, record["id"], "u", "admin").get()
    assert [entry["operation"] for entry in history] == ["create"]


def test_refused_imports_write_nothing(
    client: RegistryClient, import_worker: WorkerProcess, model: str, engine: sa.Engine,
    tmp_path: Path,
) -> None:
    from registry.errors import PermissionDenied, UnknownField

    source = people_csv(tmp_path / "people.csv", 10)
    with pytest.raises(PermissionDenied):
        client.import_records(model, source, user_id="v", user_role="viewer",
                              field_map=FIELD_MAP)
    with pytest.raises(UnknownField):
        client.import_records(model, source, user_id="a", user_role="admin",
                              field_map={**FIELD_MAP, "note": "nope"})
    assert count(engine, "SELECT count(*) FROM dmr_import_jobs WHERE model = :m", m=model) == 0


def test_a_worker_killed_mid_chunk_loses_and_doubles_nothing(
    client: RegistryClient, import_worker: WorkerProcess, model: str, engine: sa.Engine,
    tmp_path: Path,
) -> None:
    rows = 10_000
    source = people_csv(tmp_path / "people.csv", rows)
    sent: list[dict[str, Any]] = []
    producer = threading.Thread(target=lambda: sent.append(client.import_records(
        model, source, user_id="l", user_role="admin", field_map=FIELD_MAP,
        options={"chunk_size": 250}, wait=False,
    )))
    producer.start()
    marks = ("SELECT count(*) FROM dmr_import_chunks c JOIN dmr_import_jobs j "
             "ON j.id = c.job_id WHERE j.model = :m")
    try:
        wait_for(engine, marks, 6, import_worker, m=model)
        import_worker.kill()  # the producer goes on sending meanwhile
        assert count(engine, marks, m=model) < rows // 250, "killed too late"
    finally:
        import_worker.start()
        producer.join(timeout=120)
    status = wait_status(client, sent[0]["job_id"])
    assert_accounted(engine, status, model, rows)


def test_the_broker_dropping_every_connection_loses_nothing(
    client: RegistryClient, import_worker: WorkerProcess, model: str, engine: sa.Engine,
    tmp_path: Path, broker_url: str,
) -> None:
    rows = 4000
    source = people_csv(tmp_path / "people.csv", rows)
    arguments = {"user_id": "l", "user_role": "admin", "field_map": FIELD_MAP,
                 "options": {"chunk_size": 250}}
    sent = client.import_records(model, source, wait=False, **arguments)
    job = sent["job_id"]
    wait_for(engine, "SELECT count(*) FROM dmr_import_chunks WHERE job_id = :j", 4,
             import_worker, j=job)
    vhost = broker_url.rsplit("/", 1)[1]
    # What a broker restart does to its clients: every connection closed at once, unacked
    # messages back in their queue.
    _rabbitmqctl("close_all_connections", "--vhost", vhost, "test: broker restart")
    status = wait_status(client, job)
    if status["state"] != "finished":  # a chunk in flight to the broker was lost: run again
        status = client.import_records(model, source, timeout=120, **arguments)
    assert_accounted(engine, status, model, rows)


PRODUCER = """
import json, sys, time
from registry.settings import Settings
from tasks.client import RegistryClient
client = RegistryClient.from_settings(Settings.load())
args = json.loads(sys.argv[1])
def slowly(status):
    if "sent" in status:
        time.sleep(0.05)  # a slow source: the kill lands mid-send
client.import_records(args["model"], args["source"], user_id="l", user_role="admin",
                      field_map=args["field_map"], options={"chunk_size": 100},
                      progress=slowly, wait=False)
"""


def test_a_producer_killed_mid_send_and_run_again(
    client: RegistryClient, import_worker: WorkerProcess, model: str, engine: sa.Engine,
    tmp_path: Path, service_env: dict[str, str],
) -> None:
    rows = 3000
    source = people_csv(tmp_path / "people.csv", rows)
    arguments = json.dumps({"model": model, "source": str(source), "field_map": FIELD_MAP})
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, arguments], cwd=PROJECT_ROOT,
        env={**os.environ, **service_env}, start_new_session=True,
    )
    try:
        wait_for(engine, "SELECT count(*) FROM dmr_import_chunks c JOIN dmr_import_jobs j "
                 "ON j.id = c.job_id WHERE j.model = :m", 5, import_worker, m=model)
        os.killpg(producer.pid, signal.SIGKILL)
        producer.wait(timeout=30)
    finally:
        if producer.poll() is None:
            os.killpg(producer.pid, signal.SIGKILL)
    table = f"dmr_r_{model.lower()}"
    assert count(engine, f"SELECT count(*) FROM {table}") < rows - expected_bad(rows)
    status = client.import_records(model, source, user_id="l", user_role="admin",
                                   field_map=FIELD_MAP, options={"chunk_size": 100},
                                   timeout=120)
    assert_accounted(engine, status, model, rows)


def test_create_many_through_a_worker(
    client: RegistryClient, workers: Any, model: str, engine: sa.Engine
) -> None:
    from registry.errors import ValidationFailed

    items = [dict(zip(FIELD_MAP.values(), good_row(i), strict=True)) for i in range(1, 51)]
    for item in items:
        item["note"] = item["note"] or None
    made = client.create_many(model, items, "u", "admin", idempotency_key=model).get()
    again = client.create_many(model, items, "u", "admin", idempotency_key=model).get()
    assert made == again and len(made) == 50
    items[7]["age"] = "x"
    with pytest.raises(ValidationFailed) as caught:
        client.create_many(model, items, "u", "admin").get()
    assert [e["index"] for e in caught.value.errors] == [7]
    assert count(engine, f"SELECT count(*) FROM dmr_r_{model.lower()}") == 50


def wait_status(client: RegistryClient, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status: dict[str, Any] = client.import_status(job).get(timeout=30)
        if status["state"] != "running" or time.monotonic() > deadline:
            return status
        if status["chunk_count"] is not None and status["chunks"] == status["chunk_count"]:
            return status
        time.sleep(0.3)
