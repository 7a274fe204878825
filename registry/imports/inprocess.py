"""The registry's in-process bulk methods: `create_many` and `import_records`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import producer
from .jobs import ImportOptions, parse_argument
from .sources import OpenedSource, open_source

if TYPE_CHECKING:
    from ..core import DynamicModelRegistry

__all__ = ["BulkMethods"]


class BulkMethods:
    """Mixed into `DynamicModelRegistry`."""

    def create_many(
        self,
        model_name: str,
        items: Sequence[Mapping[str, Any]],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create every item or none, in one transaction; see `BulkCreator.create_many`."""
        registry: DynamicModelRegistry = self  # type: ignore[assignment]
        return registry.bulk.create_many(model_name, items, user_id, user_role, idempotency_key)

    def import_records(
        self,
        model_name: str,
        resource: str | os.PathLike[str] | Mapping[str, Any],
        *,
        user_id: str | None,
        user_role: str,
        field_map: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        progress: producer.Progress | None = None,
    ) -> dict[str, Any]:
        """Import a source's rows in this process, chunk by chunk as the workers would;
        returns the job's final status (see `ImportService.status`)."""
        chosen: ImportOptions = parse_argument(ImportOptions, options or {}, "options")
        registry: DynamicModelRegistry = self  # type: ignore[assignment]
        source = open_source(resource, max_field_bytes=registry.settings.models.max_payload_bytes)
        return self._send_all(model_name, source, user_id, user_role, field_map, chosen,
                              progress)

    def resume_import(
        self,
        job_id: str,
        *,
        source_url: str | None = None,
        progress: producer.Progress | None = None,
    ) -> dict[str, Any]:
        """Finish a job that stalled or whose producer stopped: read its source again (it
        must be unchanged) and write the chunks that have no completion mark; returns the
        final status. An SQL source whose URL held a password needs the URL again,
        `source_url` (the job keeps it masked). Raises `ImportNotFound`, `ValidationFailed`
        for a `source_url` naming another source, or `SourceUnreadable` when the source is
        gone or changed, or its password is not given."""
        registry: DynamicModelRegistry = self  # type: ignore[assignment]
        job = registry.imports.definition(job_id)
        source = producer.reopen(job, max_field_bytes=registry.settings.models.max_payload_bytes,
                                 source_url=source_url)
        return self._send_all(job["model"], source, job["user_id"], job["user_role"],
                              job["field_map"], ImportOptions.model_validate(job["options"]),
                              progress)

    def _send_all(
        self,
        model_name: str,
        source: OpenedSource,
        user_id: str | None,
        user_role: str,
        field_map: Mapping[str, str] | None,
        chosen: ImportOptions,
        progress: producer.Progress | None,
    ) -> dict[str, Any]:
        registry: DynamicModelRegistry = self  # type: ignore[assignment]
        service = registry.imports

        def send(job_id: str, chunk_no: int, first_row: int, rows: list[Any]) -> None:
            service.run_chunk(job_id, chunk_no, first_row, rows)

        calls = producer.ImportCalls(
            start=lambda description: service.start(
                model_name, description, field_map, chosen.model_dump(), user_id, user_role
            ),
            send=send, seal=service.seal, status=service.status, cancel=service.cancel,
            marked=service.marked_chunks,
        )
        with source:
            job_id, _sent = producer.run(source, chosen.chunk_size, calls, progress)
        return service.status(job_id)
