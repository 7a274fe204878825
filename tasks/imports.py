"""Import tasks, queue `imports`, and `records.create_many`, queue `crud`.

    imports.start(model, source, field_map=None, options=None, user_id=None, user_role)
        -> job id
    imports.chunk(job_id, chunk_no, first_row, rows) -> {"chunk", "outcome", "done", "rejected"}
    imports.seal(job_id, total, chunk_count) -> status
    imports.status(job_id) -> {"state", "total", "done", "rejected", "rows_per_s",
                               "started_at", "finished_at", ...}
    imports.rejects(job_id, user_role, page=1, page_size=100) -> {"items", "page", ...}
    imports.cancel(job_id, reason=None) -> status
    imports.marks(job_id) -> [chunk_no, ...]  (chunks with a completion mark)
    imports.job(job_id) -> {"job_id", "model", "source", "field_map", "options", "user_id",
                            "user_role"}  (what a producer needs to resume the job)
    imports.cleanup(older_than_days=None, dry_run=False, user_id=None, user_role=None)
        -> {"jobs", "chunks", "rejects", "before", "dry_run", "more"}  (queue `registry`;
        without an age, models.import_retention_days, as beat runs it hourly; with one, a
        role in models.manager_roles)
    records.create_many(model, items, user_id, user_role, idempotency_key=None) -> [record]

A producer (`tasks.import_client`) reads the source, sends `imports.start`, then one
`imports.chunk` per chunk of rows, then `imports.seal`: workers never open the producer's
files. Each chunk is written once whatever the number of deliveries (see
registry/imports/jobs.py). A job that stalled (a chunk's message lost) is resumed by a
producer (`RegistryClient.resume_import`, or the same import run again), which sends only the
chunks `imports.marks` does not list: only the producer can read the source.
"""

from __future__ import annotations

from typing import Any

from registry.operations import check_role

from .base import RegistryTask
from .operations import registry_task

__all__ = [
    "cancel", "chunk", "cleanup", "create_many", "job", "marks", "rejects", "seal", "start",
    "status",
]


@registry_task("imports.start")
def start(
    self: RegistryTask,
    model: str,
    source: dict[str, Any],
    user_role: str,
    field_map: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
    user_id: str | None = None,
) -> str:
    return self.registry.imports.start(model, source, field_map, options, user_id, user_role)


@registry_task("imports.chunk")
def chunk(
    self: RegistryTask, job_id: str, chunk_no: int, first_row: int, rows: list[list[Any]]
) -> dict[str, Any]:
    return self.registry.imports.run_chunk(job_id, chunk_no, first_row, rows)


@registry_task("imports.seal")
def seal(self: RegistryTask, job_id: str, total: int, chunk_count: int) -> dict[str, Any]:
    return self.registry.imports.seal(job_id, total, chunk_count)


@registry_task("imports.status")
def status(self: RegistryTask, job_id: str) -> dict[str, Any]:
    return self.registry.imports.status(job_id)


@registry_task("imports.rejects")
def rejects(
    self: RegistryTask, job_id: str, user_role: str, page: int = 1, page_size: int = 100
) -> dict[str, Any]:
    return self.registry.imports.rejects(job_id, user_role, page, page_size)


@registry_task("imports.cancel")
def cancel(self: RegistryTask, job_id: str, reason: str | None = None) -> dict[str, Any]:
    return self.registry.imports.cancel(job_id, reason)


@registry_task("imports.marks")
def marks(self: RegistryTask, job_id: str) -> list[int]:
    return self.registry.imports.marked_chunks(job_id)


@registry_task("imports.job")
def job(self: RegistryTask, job_id: str) -> dict[str, Any]:
    return self.registry.imports.definition(job_id)


@registry_task("imports.cleanup")
def cleanup(
    self: RegistryTask,
    older_than_days: float | None = None,
    dry_run: bool = False,
    user_id: str | None = None,
    user_role: str | None = None,
) -> dict[str, Any]:
    """Delete ended import jobs with their marks and rejected rows (records stay)."""
    if older_than_days is not None:
        check_role(user_role)  # choosing the age needs a role; over the wire, always given
    return self.registry.cleanup_imports(
        older_than_days, dry_run=dry_run, user_id=user_id, user_role=user_role
    )


@registry_task("records.create_many")
def create_many(
    self: RegistryTask,
    model: str,
    items: list[dict[str, Any]],
    user_id: str | None,
    user_role: str,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    key = idempotency_key if idempotency_key is not None else f"task:{self.request.id}"
    return self.registry.create_many(model, items, user_id, user_role, idempotency_key=key)
