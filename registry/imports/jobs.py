"""Import jobs: start, one chunk at a time, status, rejected rows, cancel.

A job's id is derived from its arguments (model, source, field map, options, caller), so the
same command run again names the same job, and a chunk is identified by its number: the
producer cuts the source the same way every time. A chunk's records, their audit entry, its
rejected rows and its completion mark commit together; a chunk whose mark exists is not
written again. Done plus rejected plus skipped is always the rows the chunks carried.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .. import batch_audit
from ..audit import AuditLogger, Clock
from ..catalog import ModelEntry
from ..database import Database
from ..errors import ImportNotFound, RegistryError, UnknownField, ValidationFailed
from ..inspections import stored_field_map, stored_inspection
from ..operations import check_caller
from ..permissions import Permission
from ..records.service import validation_failed
from . import keyed
from .bulk import BulkValidator, Stamp, Validated, paused_gc
from .cleanup import MAX_JOBS_PER_CALL, add_counts, count_ended, delete_job, ended_job_ids
from .rows import RowPlan
from .tables import import_chunks, import_jobs, import_rejects

__all__ = ["ImportOptions", "ImportService", "SourceDescription"]

#: Largest page of rejected rows one call returns.
MAX_REJECTS_PAGE = 1000
#: States of a job that has not ended (stalled is running without progress).
_LIVE_STATES = frozenset({"running", "stalled"})


class ModelSource(Protocol):
    def resolve(self, conn: Connection, name: str) -> ModelEntry: ...


class ImportOptions(BaseModel):
    """How an import runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Rows per chunk (one message, one transaction).
    chunk_size: int = Field(default=5000, ge=1, le=50_000)
    #: reject: keep bad rows aside and go on; abort: stop the job at the first chunk with one.
    on_error: Literal["reject", "abort"] = "reject"
    #: insert: every row is a new record; upsert: a row whose `key` matches updates it.
    mode: Literal["insert", "upsert"] = "insert"
    #: The field(s) that identify a record for upsert: unique (an `x-unique` index on exactly
    #: these fields, or the primary key of the model's inspection). One name or a list.
    key: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=8
    )

    @field_validator("key", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SourceDescription(BaseModel):
    """What the producer read: enough to name the job and map its columns, not its rows."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(min_length=1, max_length=32)
    location: str = Field(default="", max_length=2000)
    table: str | None = Field(default=None, max_length=200)
    #: Hash of the source's content, when the producer could take one.
    sha256: str | None = Field(default=None, max_length=64)
    columns: list[str] = Field(min_length=1, max_length=2000)
    #: {field: format} the rows were written in (dates, from the inspection).
    formats: dict[str, str] = Field(default_factory=dict)


class ImportService:
    def __init__(
        self,
        database: Database,
        audit: AuditLogger,
        models: ModelSource,
        clock: Clock,
        *,
        stall_after: float = 300.0,
    ) -> None:
        self.database = database
        self.audit = audit
        self.models = models
        self.clock = clock
        #: Seconds without a chunk finishing after which a running job is "stalled".
        self.stall_after = stall_after
        self._validators: dict[tuple[str, int], BulkValidator] = {}
        self._lock = threading.Lock()

    # -- start --------------------------------------------------------------------------

    def start(
        self,
        model: str,
        source: Mapping[str, Any],
        field_map: Mapping[str, str] | None,
        options: Mapping[str, Any] | None,
        user_id: str | None,
        user_role: str,
    ) -> str:
        """Create the job (or find it, when the same import was started before) and return
        its id. Raises `UnknownField` or `ValidationFailed` for a field map or source that
        does not fit the model, and `PermissionDenied` unless the role may create records and
        write every mapped field; nothing is written then."""
        check_caller(user_id, user_role)
        described = parse_argument(SourceDescription, source, "source")
        chosen = parse_argument(ImportOptions, options or {}, "options")
        with self.database.write() as conn:
            entry = self.models.resolve(conn, model)
            if not described.formats:
                described = described.model_copy(update={"formats": _inspected_formats(entry)})
            fmap = self._field_map(entry, described, field_map)
            _check_options(entry, chosen, fmap)
            _check_permissions(entry, user_role, fmap.values(), chosen)
            job_id = job_id_for(entry.name, described, fmap, chosen, user_id, user_role)
            conn.execute(_insert_ignore(conn, import_jobs), {
                "id": job_id, "model": entry.name,
                "source": described.model_dump(mode="json"), "field_map": fmap,
                "options": chosen.model_dump(mode="json"), "user_id": user_id,
                "user_role": user_role, "state": "running", "started_at": self.clock(),
            })
        return job_id

    def _field_map(
        self, entry: ModelEntry, source: SourceDescription, given: Mapping[str, str] | None
    ) -> dict[str, str]:
        if given is None:
            stored = stored_field_map(entry) or entry.provenance.get("field_map")
            if isinstance(stored, Mapping):
                given = {c: f for c, f in stored.items() if c in source.columns}
            else:
                given = {c: c for c in source.columns if c in entry.records.field_types}
        if not isinstance(given, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise ValidationFailed(
                "The field map must be an object of source column: field name.",
                errors=[{"loc": ["field_map"], "msg": "not a map of names", "type": "field_map"}],
            )
        _check_field_map(entry, source, dict(given))
        return dict(given)

    # -- chunks -------------------------------------------------------------------------

    def run_chunk(
        self, job_id: str, chunk_no: int, first_row: int, rows: Sequence[Any]
    ) -> dict[str, Any]:
        """Write one chunk (rows numbered from `first_row`), once: a chunk already written
        answers as it did. Returns `{"chunk", "outcome", "done", "rejected"}`."""
        _check_chunk(chunk_no, first_row, rows)
        with self.database.write() as conn:
            job = self._job(conn, job_id)
            if not self._claim(conn, job_id, chunk_no, first_row, len(rows)):
                return self._mark_of(conn, job_id, chunk_no)
            if job["state"] != "running":
                return self._finish_chunk(conn, job_id, chunk_no, "skipped", 0, 0)
            try:
                entry = self.models.resolve(conn, job["model"])
                options = ImportOptions.model_validate(job["options"])
                _check_permissions(entry, job["user_role"], job["field_map"].values(), options)
            except RegistryError as exc:
                self._end(conn, job_id, "failed", exc.message)
                return self._finish_chunk(conn, job_id, chunk_no, "skipped", 0, 0)
            with paused_gc():
                return self._write_chunk(conn, job, entry, options, chunk_no, first_row, rows)

    def _write_chunk(
        self,
        conn: Connection,
        job: Mapping[str, Any],
        entry: ModelEntry,
        options: ImportOptions,
        chunk_no: int,
        first_row: int,
        rows: Sequence[Any],
    ) -> dict[str, Any]:
        plan = RowPlan(job["source"]["columns"], job["field_map"], entry.records,
                       job["source"].get("formats") or {})
        validated, shape_errors = self._validate(entry, plan, rows)
        validated.errors.update(shape_errors)
        validated.drop(shape_errors)
        if validated.errors and options.on_error == "abort":
            return self._abort(conn, job["id"], chunk_no, first_row, rows, plan, validated.errors)
        stamp = Stamp(job["user_id"], job["user_role"], self.clock())
        written = keyed.write_chunk(conn, validated, keyed.ChunkWrite(
            entry=entry, audit=self.audit, stamp=stamp,
            batch=_batch_key(job, chunk_no),
            metadata={"import": job["id"], "chunk": chunk_no},
            mapped=list(job["field_map"].values()), key=options.key or (),
            abort_on_duplicate=options.on_error == "abort",
        ))
        validated.errors.update(written.rejected)
        if written.aborted:
            return self._abort(conn, job["id"], chunk_no, first_row, rows, plan, validated.errors)
        self._reject(conn, job["id"], first_row, rows, plan, validated.errors)
        return self._finish_chunk(conn, job["id"], chunk_no, "written", written.done,
                                  len(validated.errors))

    def _validate(
        self, entry: ModelEntry, plan: RowPlan, rows: Sequence[Any]
    ) -> tuple[Validated, dict[int, list[dict[str, Any]]]]:
        """The chunk's rows validated (column by column where the plan and model allow),
        and the errors of rows of another width."""
        validator = self._validator(entry)
        by_field = plan.values(rows)
        if by_field is None:
            items, shape_errors = plan.items(rows)
            return validator.validate(items), shape_errors
        values, shape_errors = by_field
        return validator.validate_rows(
            values, len(rows), lambda position: plan.items([rows[position]])[0][0]
        ), shape_errors

    def _abort(
        self,
        conn: Connection,
        job_id: str,
        chunk_no: int,
        first_row: int,
        rows: Sequence[Any],
        plan: RowPlan,
        errors: Mapping[int, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        """on_error="abort": keep the chunk's bad rows, write none of it, end the job."""
        self._reject(conn, job_id, first_row, rows, plan, errors)
        self._end(conn, job_id, "aborted", f"Row {first_row + min(errors)} is invalid.")
        return self._finish_chunk(conn, job_id, chunk_no, "aborted", 0, len(errors))

    def _validator(self, entry: ModelEntry) -> BulkValidator:
        key = (entry.name, entry.version)
        with self._lock:
            found = self._validators.get(key)
            if found is None or found.records is not entry.records:
                found = self._validators[key] = BulkValidator(entry.records)
            return found

    def _claim(
        self, conn: Connection, job_id: str, chunk_no: int, first_row: int, count: int
    ) -> bool:
        """Insert the chunk's mark; False when another delivery wrote it first (on
        PostgreSQL this waits for a delivery still writing it)."""
        inserted = conn.execute(
            _insert_ignore(conn, import_chunks).returning(import_chunks.c.chunk_no),
            {"job_id": job_id, "chunk_no": chunk_no, "first_row": first_row, "rows": count,
             "done": 0, "rejected": 0, "outcome": "writing", "finished_at": self.clock()},
        )
        return inserted.first() is not None

    def _finish_chunk(
        self, conn: Connection, job_id: str, chunk_no: int, outcome: str, done: int,
        rejected: int,
    ) -> dict[str, Any]:
        conn.execute(
            sa.update(import_chunks)
            .where(import_chunks.c.job_id == job_id, import_chunks.c.chunk_no == chunk_no)
            .values(outcome=outcome, done=done, rejected=rejected, finished_at=self.clock())
        )
        return {"chunk": chunk_no, "outcome": outcome, "done": done, "rejected": rejected}

    def _mark_of(self, conn: Connection, job_id: str, chunk_no: int) -> dict[str, Any]:
        row = conn.execute(
            sa.select(import_chunks).where(
                import_chunks.c.job_id == job_id, import_chunks.c.chunk_no == chunk_no
            )
        ).mappings().one()
        return {"chunk": chunk_no, "outcome": row["outcome"], "done": row["done"],
                "rejected": row["rejected"]}

    def _reject(
        self,
        conn: Connection,
        job_id: str,
        first_row: int,
        rows: Sequence[Any],
        plan: RowPlan,
        errors: Mapping[int, list[dict[str, Any]]],
    ) -> None:
        if not errors:
            return
        conn.execute(sa.insert(import_rejects), [
            {"job_id": job_id, "row_number": first_row + position,
             "source_values": plan.source_values(rows[position]), "errors": found}
            for position, found in sorted(errors.items())
        ])

    # -- the job ------------------------------------------------------------------------

    def seal(self, job_id: str, total: int, chunk_count: int) -> dict[str, Any]:
        """Record that the producer has sent every chunk: `total` rows in `chunk_count`."""
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (total, chunk_count)):
            raise ValidationFailed(
                "total and chunk_count must be whole numbers from 0.",
                errors=[{"loc": ["total"], "msg": "must be >= 0", "type": "argument"}],
            )
        with self.database.write() as conn:
            self._job(conn, job_id)
            conn.execute(sa.update(import_jobs).where(import_jobs.c.id == job_id)
                         .values(total=total, chunk_count=chunk_count))
        return self.status(job_id)

    def cancel(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """Stop the job between chunks: chunks not yet written are skipped. A job that has
        ended stays as it ended."""
        if self.status(job_id)["state"] not in _LIVE_STATES:
            return self.status(job_id)
        with self.database.write() as conn:
            self._end(conn, job_id, "cancelled", reason or "Cancelled.")
        return self.status(job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        """`{"job_id", "model", "state", "total", "done", "rejected", "skipped", "chunks",
        "rows_per_s", "started_at", "finished_at", "reason"}`; `state` is running,
        stalled (running, but no chunk has finished for `stall_after` seconds), finished,
        cancelled, aborted or failed."""
        with self.database.read() as conn:
            job = self._job(conn, job_id)
            marks = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(import_chunks.c.done), 0),
                    sa.func.coalesce(sa.func.sum(import_chunks.c.rejected), 0),
                    sa.func.coalesce(sa.func.sum(import_chunks.c.rows), 0),
                    sa.func.max(import_chunks.c.finished_at),
                ).where(import_chunks.c.job_id == job_id,
                        import_chunks.c.outcome != "writing")
            ).one()
        return _status(job, *marks, now=self.clock(), stall_after=self.stall_after)

    def marked_chunks(self, job_id: str) -> list[int]:
        """The numbers of the job's chunks that have a completion mark (written, or skipped
        after a cancel): a producer resuming the job sends only the others."""
        with self.database.read() as conn:
            self._job(conn, job_id)
            found = conn.execute(
                sa.select(import_chunks.c.chunk_no)
                .where(import_chunks.c.job_id == job_id, import_chunks.c.outcome != "writing")
                .order_by(import_chunks.c.chunk_no)
            ).scalars()
            return [int(number) for number in found]

    def definition(self, job_id: str) -> dict[str, Any]:
        """What the job was started with, for a producer that resumes it: `{"job_id",
        "model", "source", "field_map", "options", "user_id", "user_role"}`."""
        with self.database.read() as conn:
            job = self._job(conn, job_id)
        return {"job_id": job["id"], **{key: job[key] for key in (
            "model", "source", "field_map", "options", "user_id", "user_role")}}

    def rejects(
        self, job_id: str, user_role: str, page: int = 1, page_size: int = 100
    ) -> dict[str, Any]:
        """One page of rejected rows, by row number, values masked for `user_role`:
        `{"items": [{"row", "values", "errors"}], "page", "page_size", "total"}`."""
        check_caller(None, user_role)
        _check_page(page, page_size)
        with self.database.read() as conn:
            job = self._job(conn, job_id)
            entry = self.models.resolve(conn, job["model"])
            entry.permissions.require(user_role, Permission.READ)
            where = import_rejects.c.job_id == job_id
            rows = conn.execute(
                sa.select(import_rejects).where(where).order_by(import_rejects.c.row_number)
                .limit(page_size).offset((page - 1) * page_size)
            ).mappings().all()
            total = conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
        items = [{"row": row["row_number"],
                  "values": entry.permissions.view(row["source_values"], user_role),
                  "errors": row["errors"]} for row in rows]
        return {"items": items, "page": page, "page_size": page_size, "total": int(total)}

    def cleanup(self, before: datetime.datetime, *, dry_run: bool = False) -> dict[str, Any]:
        """Delete jobs that ended before `before` with their chunk marks and rejected rows
        (`cleanup.py`: records, their audit entries and batch payloads stay). At most
        `MAX_JOBS_PER_CALL` jobs a call; `more` says whether others wait. With `dry_run`,
        count what would go and write nothing. Returns `{"jobs", "chunks", "rejects",
        "before", "dry_run", "more"}`."""
        answer = {"before": before.isoformat(), "dry_run": dry_run}
        with self.database.read() as conn:
            if dry_run:
                return {**count_ended(conn, before), **answer, "more": False}
            found = ended_job_ids(conn, before, MAX_JOBS_PER_CALL + 1)
        taken = found[:MAX_JOBS_PER_CALL]
        deleted = []
        for job_id in taken:
            with self.database.write() as conn:
                deleted.append(delete_job(conn, job_id, before))
        return {**add_counts(deleted), **answer, "more": len(found) > len(taken)}

    def _job(self, conn: Connection, job_id: Any) -> Mapping[str, Any]:
        if not isinstance(job_id, str) or len(job_id) > 64:
            raise ImportNotFound(f"No import job has the id {job_id!r}.", job_id=str(job_id))
        row = conn.execute(sa.select(import_jobs).where(import_jobs.c.id == job_id))
        found = row.mappings().first()
        if found is None:
            raise ImportNotFound(f"No import job has the id {job_id!r}.", job_id=job_id)
        return dict(found)

    def _end(self, conn: Connection, job_id: str, state: str, reason: str) -> None:
        conn.execute(
            sa.update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.state == "running")
            .values(state=state, reason=reason, ended_at=self.clock())
        )


def _batch_key(job: Mapping[str, Any], chunk_no: int) -> str:
    """The chunk's batch key, which its records' ids hold: one series a job, so a job's
    chunks sort in order (`series_batch_key`). The job's start time is part of the series:
    once an ended job is cleaned up, the same import run again is a new job under the same
    id, and its records must not take the ids of the first run's."""
    series = f"import:{job['id']}:{job['started_at'].isoformat()}"
    return batch_audit.series_batch_key(series, chunk_no)


def _inspected_formats(entry: ModelEntry) -> dict[str, str]:
    """The `strptime` formats the model's inspection found for its date and time fields."""
    inspection = stored_inspection(entry) or {}
    provenance = inspection.get("provenance") or {}
    return {
        field: facts["format"] for field, facts in provenance.items()
        if isinstance(facts, Mapping) and isinstance(facts.get("format"), str)
        and "%" in facts["format"] and field in entry.records.field_types
    }


def job_id_for(
    model: str,
    source: SourceDescription,
    field_map: Mapping[str, str],
    options: ImportOptions,
    user_id: str | None,
    user_role: str,
) -> str:
    """The job's id from everything that defines it."""
    identity = json.dumps(
        [model, source.model_dump(mode="json"), dict(field_map), options.model_dump(mode="json"),
         user_id, user_role],
        sort_keys=True,
    )
    return "imp_" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def _status(
    job: Mapping[str, Any],
    chunks: int,
    done: int,
    rejected: int,
    rows: int,
    last_chunk_at: datetime.datetime | None,
    *,
    now: datetime.datetime,
    stall_after: float,
) -> dict[str, Any]:
    state = job["state"]
    complete = job["chunk_count"] is not None and chunks >= job["chunk_count"]
    if state == "running" and complete:
        state = "finished"
    last_progress = max(job["started_at"], last_chunk_at or job["started_at"])
    if state == "running" and (now - last_progress).total_seconds() > stall_after:
        state = "stalled"
    finished_at = job["ended_at"] if state != "finished" else (last_chunk_at or job["started_at"])
    if state in ("running", "stalled"):
        finished_at = None
    started = job["started_at"]
    elapsed = ((finished_at or now) - started).total_seconds()
    done, rejected, rows = int(done), int(rejected), int(rows)
    return {
        "job_id": job["id"], "model": job["model"], "state": state, "total": job["total"],
        "done": done, "rejected": rejected, "skipped": rows - done - rejected,
        "chunks": int(chunks), "chunk_count": job["chunk_count"],
        "rows_per_s": round((done + rejected) / elapsed, 1) if elapsed > 0 else 0.0,
        "started_at": started.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at is not None else None,
        "reason": job["reason"],
    }


def parse_argument(kind: type[BaseModel], value: Any, name: str) -> Any:
    """`value` as the model `kind`; raises `ValidationFailed` naming the argument `name`."""
    try:
        return kind.model_validate(value)
    except ValidationError as exc:
        raise validation_failed(f"import {name}", exc, prefix=[name]) from None


def _check_field_map(
    entry: ModelEntry, source: SourceDescription, field_map: Mapping[str, str]
) -> None:
    unknown = sorted({f for f in field_map.values() if f not in entry.records.field_types})
    if unknown:
        raise UnknownField(
            f"The field map names {', '.join(map(repr, unknown))}, which model "
            f"{entry.name!r} does not have.",
            model=entry.name, fields=unknown,
            errors=[{"loc": ["field_map", f], "msg": "Unknown field", "type": "unknown_field"}
                    for f in unknown],
        )
    missing = sorted(c for c in field_map if c not in source.columns)
    if missing:
        raise ValidationFailed(
            f"The field map names source column {', '.join(map(repr, missing))}, which the "
            "source does not have.",
            model=entry.name,
            errors=[{"loc": ["field_map", c], "msg": "no such column", "type": "unknown_column"}
                    for c in missing],
        )
    targets = list(field_map.values())
    doubled = sorted({f for f in targets if targets.count(f) > 1})
    required = [name for name, info in entry.model.model_fields.items() if info.is_required()]
    unmapped = [name for name in required if name not in targets]
    if doubled or unmapped or not field_map:
        problems = [f"{f!r} is mapped from more than one column" for f in doubled]
        problems += [f"required field {f!r} has no source column" for f in unmapped]
        problems += ["no source column maps to a field"] if not field_map else []
        raise ValidationFailed(
            f"The field map does not fit model {entry.name!r}: {'; '.join(problems)}.",
            model=entry.name,
            errors=[{"loc": ["field_map"], "msg": p, "type": "field_map"} for p in problems],
        )


def _check_options(entry: ModelEntry, options: ImportOptions, fmap: Mapping[str, str]) -> None:
    keyed.check_key(entry, options.mode, options.key, fmap.values())


def _check_permissions(
    entry: ModelEntry, role: str, fields: Any, options: ImportOptions
) -> None:
    entry.permissions.require(role, Permission.CREATE)
    if options.mode == "upsert":
        entry.permissions.require(role, Permission.UPDATE)
    entry.permissions.require_writable(role, list(fields))


def _check_chunk(chunk_no: Any, first_row: Any, rows: Any) -> None:
    whole = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for v in (chunk_no, first_row))
    if not whole or not isinstance(rows, list) or not (
        set(map(type, rows)) <= {list} or all(_row_shape(r) for r in rows)
    ):
        raise ValidationFailed(
            "A chunk needs a chunk number and first row (whole numbers) and rows (a list of "
            "lists of values, or {\"problem\": text, \"values\": list} for an unreadable row).",
            errors=[{"loc": ["rows"], "msg": "malformed chunk", "type": "argument"}],
        )


def _row_shape(row: Any) -> bool:
    if isinstance(row, list):
        return True
    return (isinstance(row, dict) and set(row) == {"problem", "values"}
            and isinstance(row["problem"], str) and isinstance(row["values"], list))


def _check_page(page: Any, page_size: Any) -> None:
    fine = all(isinstance(v, int) and not isinstance(v, bool) for v in (page, page_size))
    if not fine or page < 1 or not 1 <= page_size <= MAX_REJECTS_PAGE:
        raise ValidationFailed(
            f"Page must be from 1 and page size from 1 to {MAX_REJECTS_PAGE}.",
            errors=[{"loc": ["page"], "msg": "out of range", "type": "page"}],
        )


def _insert_ignore(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()

