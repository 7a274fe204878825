"""Stalled imports in-process (SQLite): a chunk that never completes shows as "stalled" after
the configured time, and resuming (by job id, or the same import run again) writes only the
chunks that have no completion mark; a changed source cannot resume a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import DynamicModelRegistry
from registry.errors import ImportNotFound, SourceUnreadable, ValidationFailed
from registry.settings import Settings
from tests.import_contract import FIELD_MAP, PERMISSIONS, Person, good_row, write_csv

ROWS, CHUNK = 20, 4


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DynamicModelRegistry]:
    settings = Settings.load(environ={"DMR_MODELS__IMPORT_STALL_AFTER_S": "0.3"})
    registry = DynamicModelRegistry(f"sqlite:///{tmp_path / 'r.sqlite3'}", settings=settings)
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    yield registry
    registry.close()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "people.csv", [good_row(i) for i in range(1, ROWS + 1)])


class Losing:
    """Stands in for `run_chunk`: the chunks in `lost` are sent but never written (their
    message was lost); records which chunks were sent."""

    def __init__(self, registry: DynamicModelRegistry, lost: set[int]) -> None:
        self.real = registry.imports.run_chunk
        self.lost = lost
        self.sent: list[int] = []

    def __call__(self, job_id: str, chunk_no: int, *args: Any) -> dict[str, Any]:
        self.sent.append(chunk_no)
        if chunk_no in self.lost:
            return {}
        return self.real(job_id, chunk_no, *args)


def run(registry: DynamicModelRegistry, source: Path) -> dict[str, Any]:
    return registry.import_records("Person", source, user_id="u", user_role="admin",
                                   field_map=FIELD_MAP, options={"chunk_size": CHUNK})


def stall(
    registry: DynamicModelRegistry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Losing]:
    losing = Losing(registry, {1, 3})
    monkeypatch.setattr(registry.imports, "run_chunk", losing)
    status = run(registry, source)
    assert status["state"] == "running" and (status["chunks"], status["chunk_count"]) == (3, 5)
    time.sleep(0.4)
    assert registry.imports.status(status["job_id"])["state"] == "stalled"
    losing.lost, losing.sent = set(), []
    return status, losing


def test_a_stalled_job_is_resumed_by_its_id(
    registry: DynamicModelRegistry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled, losing = stall(registry, source, monkeypatch)
    assert stalled["finished_at"] is None and stalled["total"] == ROWS
    assert registry.imports.marked_chunks(stalled["job_id"]) == [0, 2, 4]
    status = registry.resume_import(stalled["job_id"])
    assert losing.sent == [1, 3]
    assert (status["state"], status["done"], status["rejected"]) == ("finished", ROWS, 0)
    assert registry.list("Person", "u", "admin")["total"] == ROWS
    assert registry.resume_import(stalled["job_id"])["state"] == "finished"
    assert losing.sent == [1, 3]  # a finished job sends nothing


def test_running_the_same_import_again_resumes_it(
    registry: DynamicModelRegistry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled, losing = stall(registry, source, monkeypatch)
    status = run(registry, source)
    assert status["job_id"] == stalled["job_id"] and losing.sent == [1, 3]
    assert (status["state"], status["done"]) == ("finished", ROWS)


def test_a_job_is_not_stalled_while_chunks_finish(
    registry: DynamicModelRegistry, source: Path
) -> None:
    job = registry.imports.start("Person", {"kind": "csv", "columns": list(FIELD_MAP)},
                                 FIELD_MAP, {"chunk_size": 2}, "u", "admin")
    for chunk in range(3):
        time.sleep(0.2)
        registry.imports.run_chunk(job, chunk, 1 + 2 * chunk,
                                   [good_row(1 + 2 * chunk), good_row(2 + 2 * chunk)])
        assert registry.imports.status(job)["state"] == "running"
    time.sleep(0.4)
    assert registry.imports.status(job)["state"] == "stalled"
    assert registry.imports.cancel(job)["state"] == "cancelled"


def test_a_changed_or_missing_source_cannot_resume(
    registry: DynamicModelRegistry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled, losing = stall(registry, source, monkeypatch)
    write_csv(source, [good_row(i) for i in range(1, ROWS + 2)])
    with pytest.raises(SourceUnreadable, match="changed since"):
        registry.resume_import(stalled["job_id"])
    source.unlink()
    with pytest.raises(SourceUnreadable, match="No file"):
        registry.resume_import(stalled["job_id"])
    assert losing.sent == [] and registry.list("Person", "u", "admin")["total"] == 12
    with pytest.raises(ImportNotFound):
        registry.resume_import("imp_nope")


def test_waiting_for_a_job_ends_when_it_stalls(
    registry: DynamicModelRegistry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.imports import producer

    losing = Losing(registry, {2})
    monkeypatch.setattr(registry.imports, "run_chunk", losing)
    job = run(registry, source)["job_id"]
    seen: list[str] = []
    status = producer.wait(job, registry.imports.status, lambda s: seen.append(s["state"]),
                           interval=0.05, timeout=10)
    assert status["state"] == "stalled" and seen[-1] == "stalled"


def password_job(registry: DynamicModelRegistry) -> str:
    """A job as a producer starts it for an SQL table read through a URL with a password:
    the URL it describes carries the password masked (nothing here connects to it)."""
    source = {"kind": "sql", "location": "postgresql+psycopg://loader:***@db.example/shop",
              "table": "people", "columns": list(FIELD_MAP)}
    return registry.imports.start("Person", source, FIELD_MAP, None, "u", "admin")


def test_a_job_that_needs_its_sources_password_asks_for_the_url(
    registry: DynamicModelRegistry, source: Path
) -> None:
    job = password_job(registry)
    with pytest.raises(SourceUnreadable, match="password is not stored") as missing:
        registry.resume_import(job)
    assert missing.value.details["reason"] == "password_needed"
    with pytest.raises(ValidationFailed, match="names 'postgresql\\+psycopg://loader:\\*\\*\\*@"
                       "db.example/other'"):
        registry.resume_import(job, source_url="postgresql+psycopg://loader:pw@db.example/other")
    with pytest.raises(ValidationFailed, match="read csv"):
        registry.resume_import(run(registry, source)["job_id"], source_url="sqlite://")
