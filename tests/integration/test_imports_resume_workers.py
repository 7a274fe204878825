"""A stalled import through real workers: a chunk's message is lost (sent, never written),
the job shows "stalled", and resuming it (by job id, or by running the same import again)
sends only the chunks without a completion mark. Every row once, none written twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from registry import DynamicModelRegistry
from tasks.client import RegistryClient
from tests.import_contract import FIELD_MAP

from .conftest import WorkerProcess
from .test_imports_workers import assert_accounted, engine, model, people_csv  # noqa: F401

pytestmark = pytest.mark.integration

ROWS = 2000
CHUNK = 250
LOST = {2, 5}


@pytest.fixture(scope="module")
def import_worker(start_worker: Any, workers: Any) -> WorkerProcess:
    worker: WorkerProcess = start_worker("impresume", queues="imports")
    return worker


@pytest.fixture
def watcher(database_url: str) -> Iterator[DynamicModelRegistry]:
    """The registry in-process on the same database, with a short stall time."""
    registry = DynamicModelRegistry(database_url)
    registry.imports.stall_after = 1.0
    yield registry
    registry.close()


class LosingClient:
    """Sends through `client`, but the messages of chunks in `lost` never reach the broker;
    counts the chunks sent."""

    def __init__(self, client: RegistryClient, lost: set[int]) -> None:
        self.client = client
        self.lost = lost
        self.sent: list[int] = []
        self.real = client.send_unanswered

    def send_unanswered(self, name: str, /, **kwargs: Any) -> None:
        if name == "imports.chunk":
            self.sent.append(kwargs["chunk_no"])
            if kwargs["chunk_no"] in self.lost:
                return
        self.real(name, **kwargs)


def wait_idle(client: RegistryClient, job: str, chunks: int) -> dict[str, Any]:
    """Wait until the written chunks stop growing at `chunks`."""
    deadline = time.monotonic() + 90
    while True:
        status: dict[str, Any] = client.import_status(job).get(timeout=30)
        if status["chunks"] >= chunks or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["resume", "run again"])
def test_a_lost_chunk_stalls_the_job_and_resuming_sends_only_it(
    client: RegistryClient, import_worker: WorkerProcess, model: str,  # noqa: F811
    engine: sa.Engine, tmp_path: Path, watcher: DynamicModelRegistry,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    source = people_csv(tmp_path / "people.csv", ROWS)
    arguments = {"user_id": "l", "user_role": "admin", "field_map": FIELD_MAP,
                 "options": {"chunk_size": CHUNK}}
    losing = LosingClient(client, LOST)
    monkeypatch.setattr(client, "send_unanswered", losing.send_unanswered)
    sent = client.import_records(model, source, wait=False, **arguments)
    job, chunk_count = sent["job_id"], ROWS // CHUNK
    assert sorted(losing.sent) == list(range(chunk_count))
    status = wait_idle(client, job, chunk_count - len(LOST))
    assert (status["chunks"], status["chunk_count"]) == (chunk_count - len(LOST), chunk_count)
    time.sleep(1.5)
    stalled = watcher.imports.status(job)
    assert stalled["state"] == "stalled" and stalled["finished_at"] is None
    assert watcher.imports.marked_chunks(job) == sorted(set(range(chunk_count)) - LOST)

    losing.lost, losing.sent = set(), []
    if how == "resume":
        status = client.resume_import(job, timeout=120)
    else:
        status = client.import_records(model, source, timeout=120, **arguments)
    assert sorted(losing.sent) == sorted(LOST)
    assert status["job_id"] == job
    assert_accounted(engine, status, model, ROWS)
