"""The producer's import and bulk-create calls, mixed into `RegistryClient`.

`import_records` reads the source here, in the producer, and sends it in chunks: the workers
need no access to its files. It returns the job's final status; `progress` is called with
the job's status (plus `sent`, rows sent so far) as it goes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from registry.imports import ImportOptions, producer
from registry.imports.sources import OpenedSource, open_source

if TYPE_CHECKING:
    from .client import RegistryClient, TaskHandle

__all__ = ["ImportMethods"]

#: Largest field a source may hold (bytes); a bigger one is a malformed source.
MAX_FIELD_BYTES = 1 << 20


class ImportMethods:
    """Import tasks for `RegistryClient`."""

    def create_many(
        self,
        model: str,
        items: Sequence[Mapping[str, Any]],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        """Create every item or none (`records.create_many`)."""
        client = _client(self)
        return client.send(
            "records.create_many", model=model, items=[dict(item) for item in items],
            user_id=user_id, user_role=user_role,
            idempotency_key=idempotency_key or _new_key(),
        )

    def start_import(
        self,
        model: str,
        source: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        field_map: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TaskHandle:
        """`imports.start`: the job id of an import of `source` (a description with its
        columns; see `registry.imports.SourceDescription`)."""
        return _client(self).send(
            "imports.start", model=model, source=dict(source), user_id=user_id,
            user_role=user_role, field_map=None if field_map is None else dict(field_map),
            options=None if options is None else dict(options),
        )

    def import_status(self, job_id: str) -> TaskHandle:
        return _client(self).send("imports.status", job_id=job_id)

    def import_rejects(
        self, job_id: str, user_role: str, page: int = 1, page_size: int = 100
    ) -> TaskHandle:
        return _client(self).send(
            "imports.rejects", job_id=job_id, user_role=user_role, page=page,
            page_size=page_size,
        )

    def cancel_import(self, job_id: str, reason: str | None = None) -> TaskHandle:
        return _client(self).send("imports.cancel", job_id=job_id, reason=reason)

    def cleanup_imports(
        self,
        older_than_days: float | None = None,
        *,
        dry_run: bool = False,
        user_id: str | None = None,
        user_role: str | None = None,
    ) -> TaskHandle:
        """`imports.cleanup`: delete import jobs that ended more than `older_than_days` ago
        (default `models.import_retention_days`) with their marks and rejected rows; a
        chosen age needs a role with the management permission."""
        return _client(self).send(
            "imports.cleanup", older_than_days=older_than_days, dry_run=dry_run,
            user_id=user_id, user_role=user_role,
        )

    def import_records(
        self,
        model: str,
        resource: str | os.PathLike[str] | Mapping[str, Any],
        *,
        user_id: str | None,
        user_role: str,
        field_map: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Read `resource`, send it to the workers in chunks and (with `wait`) return the
        job's final status. Raises `SourceUnreadable`, and the errors of `imports.start`
        (`UnknownField`, `ValidationFailed`, `PermissionDenied`) before any row is sent."""
        chosen = ImportOptions.model_validate(options or {})
        source = open_source(resource, max_field_bytes=MAX_FIELD_BYTES)
        return self._send_all(model, source, user_id, user_role, field_map, chosen,
                              progress, wait, timeout)

    def resume_import(
        self,
        job_id: str,
        *,
        source_url: str | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Finish a job that stalled (status "stalled": a chunk's message was lost) or whose
        producer stopped: read its source again here (it must be unchanged) and send the
        chunks that have no completion mark (`imports.marks`). An SQL source whose URL held
        a password needs the URL again, `source_url`: the job keeps it masked, and it is
        never sent to the workers. Raises `ImportNotFound`, `ValidationFailed` for a
        `source_url` naming another source, or `SourceUnreadable` when the source is gone or
        changed, or its password is not given."""
        job = _client(self).send("imports.job", job_id=job_id).get()
        source = producer.reopen(job, max_field_bytes=MAX_FIELD_BYTES, source_url=source_url)
        return self._send_all(
            job["model"], source, job["user_id"], job["user_role"], job["field_map"],
            ImportOptions.model_validate(job["options"]), progress, wait, timeout,
        )

    def _send_all(
        self,
        model: str,
        source: OpenedSource,
        user_id: str | None,
        user_role: str,
        field_map: Mapping[str, str] | None,
        chosen: ImportOptions,
        progress: Callable[[dict[str, Any]], None] | None,
        wait: bool,
        timeout: float | None,
    ) -> dict[str, Any]:
        client = _client(self)
        calls = producer.ImportCalls(
            start=lambda description: client.start_import(
                model, description, user_id, user_role, field_map, chosen.model_dump()
            ).get(),
            send=lambda job_id, chunk_no, first_row, rows: _send_chunk(
                client, job_id, chunk_no, first_row, rows
            ),
            seal=lambda job_id, total, count: client.send(
                "imports.seal", job_id=job_id, total=total, chunk_count=count
            ).get(),
            status=lambda job_id: client.import_status(job_id).get(),
            cancel=lambda job_id, reason: client.cancel_import(job_id, reason).get(),
            marked=lambda job_id: client.send("imports.marks", job_id=job_id).get(),
        )
        with source:
            job_id, status = producer.run(source, chosen.chunk_size, calls, progress)
        if not wait:
            return status
        return producer.wait(
            job_id, calls.status, progress, interval=client.settings.polling_interval,
            timeout=timeout,
        )


def _send_chunk(
    client: RegistryClient, job_id: str, chunk_no: int, first_row: int, rows: list[Any]
) -> None:
    client.send_unanswered(
        "imports.chunk", job_id=job_id, chunk_no=chunk_no, first_row=first_row, rows=rows
    )


def _client(methods: ImportMethods) -> RegistryClient:
    return methods  # type: ignore[return-value]


def _new_key() -> str:
    import uuid

    return str(uuid.uuid4())
