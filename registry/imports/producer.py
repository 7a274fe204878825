"""The producer's side of an import: read the source, start the job, send every chunk, seal.

The same loop runs in-process (`registry.import_records`, chunks written directly) and through
Celery (`tasks.import_client`, chunks sent as `imports.chunk` messages): only the calls differ.
A source is cut the same way every time, so running the same command again after the producer
was killed names the same job and the same chunks; chunks already written are skipped by the
workers, and the rest are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SourceUnreadable
from .sources import OpenedSource, chunked

__all__ = ["ImportCalls", "Progress", "run", "wait"]

#: Called with the job's status as it goes.
Progress = Callable[[dict[str, Any]], None]
_DONE_STATES = frozenset({"finished", "cancelled", "aborted", "failed"})


@dataclass(frozen=True)
class ImportCalls:
    """How the loop reaches the jobs: directly or through the workers."""

    start: Callable[[dict[str, Any]], str]
    send: Callable[[str, int, int, list[list[Any]]], None]
    seal: Callable[[str, int, int], dict[str, Any]]
    status: Callable[[str], dict[str, Any]]
    cancel: Callable[[str, str], dict[str, Any]]


def run(
    source: OpenedSource,
    chunk_size: int,
    calls: ImportCalls,
    progress: Progress | None = None,
) -> tuple[str, dict[str, Any]]:
    """Send the whole source; returns the job id and its status once every chunk is sent."""
    job_id = calls.start(source.description())
    status = calls.status(job_id)
    if status["state"] != "running" or status["chunk_count"] is not None:
        return job_id, status  # this import ran to its end before
    rows = chunks = 0
    try:
        for first_row, chunk in chunked(source.rows(), chunk_size):
            calls.send(job_id, chunks, first_row, chunk)
            rows, chunks = rows + len(chunk), chunks + 1
            if progress is not None:
                progress({**status, "sent": rows})
    except SourceUnreadable as exc:
        calls.cancel(job_id, f"The source could not be read to its end: {exc.message}")
        raise
    return job_id, calls.seal(job_id, rows, chunks)


def wait(
    job_id: str,
    status_of: Callable[[str], dict[str, Any]],
    progress: Progress | None = None,
    *,
    interval: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll the job until it ends; returns its final status. Raises `TimeoutError`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = status_of(job_id)
        if progress is not None:
            progress(status)
        if status["state"] in _DONE_STATES:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Import {job_id} had not ended after {timeout} seconds.")
        time.sleep(interval)
