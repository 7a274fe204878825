"""The producer's side of an import: read the source, start the job, send every chunk, seal.

The same loop runs in-process (`registry.import_records`, chunks written directly) and through
Celery (`tasks.import_client`, chunks sent as `imports.chunk` messages): only the calls differ.
A source is cut the same way every time, so running the same command again after the producer
was killed names the same job and the same chunks. The loop asks which chunks already have a
completion mark and sends only the others: a job that stalled because a chunk's message was
lost (its worker died with it unacknowledged past the broker's redelivery, say) is finished
by running the same import again, or by `resume` with its job id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import SourceUnreadable, ValidationFailed
from .bulk import paused_gc
from .jobs import ImportOptions, SourceDescription, job_id_for
from .sources import OpenedSource, chunked, open_source

__all__ = ["ImportCalls", "Progress", "reopen", "run", "wait"]

#: Called with the job's status as it goes.
Progress = Callable[[dict[str, Any]], None]
_DONE_STATES = frozenset({"finished", "cancelled", "aborted", "failed"})
#: States that end a wait: the job ended, or it stalled and needs a resume.
_WAIT_ENDS = _DONE_STATES | {"stalled"}
#: What SQLAlchemy writes for a password it hides (`render_as_string(hide_password=True)`).
_MASK = "***"


@dataclass(frozen=True)
class ImportCalls:
    """How the loop reaches the jobs: directly or through the workers."""

    start: Callable[[dict[str, Any]], str]
    send: Callable[[str, int, int, list[Any]], None]
    seal: Callable[[str, int, int], dict[str, Any]]
    status: Callable[[str], dict[str, Any]]
    cancel: Callable[[str, str], dict[str, Any]]
    #: The numbers of the job's chunks that have a completion mark.
    marked: Callable[[str], list[int]]


def run(
    source: OpenedSource,
    chunk_size: int,
    calls: ImportCalls,
    progress: Progress | None = None,
) -> tuple[str, dict[str, Any]]:
    """Send every chunk of the source that has no completion mark yet (all of them, for a
    new job); returns the job id and its status once they are sent."""
    job_id = calls.start(source.description())
    status = calls.status(job_id)
    if status["state"] in _DONE_STATES:
        return job_id, status  # this import ran to its end before
    marked = frozenset(calls.marked(job_id))
    rows = chunks = 0
    pieces = chunked(source.rows(), chunk_size)
    try:
        while True:
            # A chunk's rows are thousands of new lists, which set off the cyclic collector
            # (a full collection walks the producer's whole heap): half the cost of reading
            # a row, measured. They are freed by reference counting once the chunk is sent.
            with paused_gc():
                piece = next(pieces, None)
                if piece is None:
                    break
                first_row, chunk = piece
                if chunks not in marked:
                    calls.send(job_id, chunks, first_row, chunk)
            rows, chunks = rows + len(chunk), chunks + 1
            if progress is not None:
                progress({**status, "sent": rows})
    except SourceUnreadable as exc:
        calls.cancel(job_id, f"The source could not be read to its end: {exc.message}")
        raise
    return job_id, calls.seal(job_id, rows, chunks)


def reopen(
    job: Mapping[str, Any], *, max_field_bytes: int, source_url: str | None = None
) -> OpenedSource:
    """Open the source of a started job (`ImportService.definition`) to resume it.

    A job keeps an SQL source's URL with its password masked (the password is never
    stored), so resuming such a job takes the URL again, `source_url`; it must name the
    source the job read. Raises `ValidationFailed` for a `source_url` that names another
    source (or a job that read no SQL table), and `SourceUnreadable` when the source is gone,
    its password is needed and not given, or it is not what the job read: its content
    (sha256), columns or location changed, so its chunks would not be the job's chunks."""
    stored = job["source"]
    resource = {"kind": stored["kind"], "location": _location(job, source_url),
                "formats": stored.get("formats") or {}}
    if stored.get("table") is not None:
        resource["table"] = stored["table"]
    source = open_source(resource, max_field_bytes=max_field_bytes)
    same = job_id_for(
        job["model"], SourceDescription.model_validate(source.description()), job["field_map"],
        ImportOptions.model_validate(job["options"]), job["user_id"], job["user_role"],
    ) == job["job_id"]
    if not same:
        source.close()
        raise SourceUnreadable(
            f"The source {stored['location']!r} is not the one import {job['job_id']} read: "
            "it changed since, so the job cannot be resumed from it.",
            job_id=job["job_id"], location=stored["location"],
        )
    return source


def _location(job: Mapping[str, Any], source_url: str | None) -> str:
    """Where to read the job's source: as stored, or the URL given again, checked to name
    the same source (the same URL, its password aside)."""
    stored = job["source"]
    if source_url is None:
        if stored["kind"] == "sql" and _masked_password(stored["location"]):
            raise SourceUnreadable(
                f"Import {job['job_id']} read {stored['location']!r}, whose password is not "
                "stored: give the source URL again to resume it (source_url; on the command "
                "line DMR_IMPORT_SOURCE_URL or --source-url).",
                job_id=job["job_id"], location=stored["location"], reason="password_needed",
            )
        return str(stored["location"])
    if stored["kind"] != "sql":
        raise _other_source(f"source_url is for a job that read an SQL table; import "
                            f"{job['job_id']} read {stored['kind']} {stored['location']!r}.")
    shown = _shown(source_url)
    if shown != stored["location"]:
        raise _other_source(f"The source URL given names {shown!r}, but import "
                            f"{job['job_id']} read {stored['location']!r}.")
    return source_url


def _masked_password(location: str) -> bool:
    """Whether a stored URL had a password, which the job keeps masked."""
    return sa.make_url(location).password == _MASK


def _shown(url: str) -> str:
    """The URL as a job stores it (its password masked), the inspector's way."""
    import inspector  # loaded only when a source is read, as in sources.py

    try:
        return inspector.Resource("sql", url).display_location
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise _other_source("source_url is not an SQLAlchemy URL.") from None


def _other_source(message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["source_url"], "msg": "not the job's source", "type": "argument"}]
    )


def wait(
    job_id: str,
    status_of: Callable[[str], dict[str, Any]],
    progress: Progress | None = None,
    *,
    interval: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll the job until it ends or stalls; returns that status. Raises `TimeoutError`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = status_of(job_id)
        if progress is not None:
            progress(status)
        if status["state"] in _WAIT_ENDS:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Import {job_id} had not ended after {timeout} seconds.")
        time.sleep(interval)
