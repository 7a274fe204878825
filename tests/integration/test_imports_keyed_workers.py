"""Unique values and upsert through real workers on PostgreSQL and RabbitMQ: chunks written in
parallel by two pool processes meet each other's values; every row is done or rejected once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tasks.client import RegistryClient
from tests.import_keyed_contract import PERMISSIONS, Member, member, write_csv

from .conftest import WorkerProcess, unique
from .test_imports_workers import count, engine  # noqa: F401  (engine: a fixture)

pytestmark = pytest.mark.integration

ROWS, CHUNK = 3000, 100
#: Every row whose number is a multiple of REPEAT takes the email of the row REPEAT - 1 before
#: it, which sits in another chunk about half the time: chunks written at the same moment clash.
REPEAT = 7


@pytest.fixture(scope="module")
def import_worker(start_worker: Any, workers: Any) -> WorkerProcess:
    worker: WorkerProcess = start_worker("impkeyed", queues="imports", concurrency=2)
    return worker


@pytest.fixture
def model(client: RegistryClient) -> str:
    name = unique("Member")
    client.register_model(name, Member, permissions=PERMISSIONS, user_role="admin").get()
    return name


def rows_with_repeats() -> list[list[Any]]:
    rows = [member(i) for i in range(1, ROWS + 1)]
    for number in range(REPEAT, ROWS + 1, REPEAT):
        rows[number - 1][1] = f"m{number - REPEAT + 1}@example.com"
    return rows


def test_duplicates_across_parallel_chunks_are_rejected_once(
    client: RegistryClient, import_worker: WorkerProcess, model: str,
    engine: sa.Engine, tmp_path: Path,  # noqa: F811
) -> None:
    source = write_csv(tmp_path / "members.csv", rows_with_repeats())
    status = client.import_records(model, source, user_id="l", user_role="admin",
                                   options={"chunk_size": CHUNK}, timeout=180)
    repeats = ROWS // REPEAT
    assert status["state"] == "finished", status
    assert (status["total"], status["done"], status["rejected"]) == (ROWS, ROWS - repeats,
                                                                     repeats)
    table = f"dmr_r_{model.lower()}"
    assert count(engine, f"SELECT count(*) FROM {table}") == ROWS - repeats
    assert count(engine, f"SELECT count(DISTINCT email) FROM {table}") == ROWS - repeats
    page = client.import_rejects(status["job_id"], "admin", page=1, page_size=1000).get()
    rejected = {item["row"] for item in page["items"]}
    # Of each pair of rows sharing an email, exactly one is rejected: which one depends on
    # which of two chunks written at the same moment commits first.
    pairs = [(number - REPEAT + 1, number) for number in range(REPEAT, ROWS + 1, REPEAT)]
    assert len(rejected) == len(pairs)
    assert all((first in rejected) != (second in rejected) for first, second in pairs)
    assert {e["type"] for item in page["items"] for e in item["errors"]} == {"duplicate_value"}
    assert {tuple(e["loc"]) for item in page["items"] for e in item["errors"]} == {("email",)}


def test_upsert_through_the_workers_updates_with_history(
    client: RegistryClient, import_worker: WorkerProcess, model: str,
    engine: sa.Engine, tmp_path: Path,  # noqa: F811
) -> None:
    first = write_csv(tmp_path / "a.csv", [member(i) for i in range(1, 1001)])
    assert client.import_records(model, first, user_id="l", user_role="admin",
                                 options={"chunk_size": CHUNK}, timeout=180)["done"] == 1000
    rows = [member(i, age=i + 1 if i % 10 == 0 else None) for i in range(1, 1201)]
    second = write_csv(tmp_path / "b.csv", rows)
    status = client.import_records(model, second, user_id="u2", user_role="admin",
                                   options={"chunk_size": CHUNK, "mode": "upsert",
                                            "key": ["code"]}, timeout=180)
    assert (status["state"], status["done"], status["rejected"]) == ("finished", 1200, 0)
    table = f"dmr_r_{model.lower()}"
    assert count(engine, f"SELECT count(*) FROM {table}") == 1200
    assert count(engine, f"SELECT count(*) FROM {table} WHERE version = 2") == 100
    assert count(engine, "SELECT count(*) FROM dmr_audit_outbox WHERE model = :m "
                 "AND operation = 'update'", m=model) == 100
    changed = client.list(model, "u", "admin", filters={"code": "C10"}).get()["items"][0]
    history = client.history(model, changed["id"], "u", "admin").get()
    assert [e["operation"] for e in history] == ["create", "update"]
    assert history[1]["changes"]["age"] == {"old": 10, "new": 11}
