"""Forgetting import jobs that ended long ago: each job row, its chunk marks, its rejected rows.

A job has ended when it is cancelled, aborted or failed (its `ended_at`), or finished: every
chunk it sealed has a mark (its newest mark's time, as `status` reports it). A running or
stalled job is never taken, however old: its marks are what a resume needs.

What stays: the records, and their audit trail. The batch payloads the job's chunks wrote
(`dmr_audit_batches`) are what history, as-of and verification expand the chunks' entries
into, so they go only with those entries, when audit retention purges them
(`AuditTrail.purge`); a cleaned job's records keep their history.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .tables import import_chunks, import_jobs, import_rejects

__all__ = ["MAX_JOBS_PER_CALL", "add_counts", "count_ended", "delete_job", "ended_job_ids"]

#: Jobs one cleanup call deletes, each in a transaction of its own: a call stays well inside
#: a task's time limit, and the next call (beat's next run) goes on.
MAX_JOBS_PER_CALL = 200
#: States a job is left in when it ends before every chunk is written.
_ENDED = ("cancelled", "aborted", "failed")


def ended_job_ids(conn: Connection, before: datetime.datetime, limit: int) -> list[str]:
    """Ids of up to `limit` jobs that ended before `before`, oldest start first."""
    query = _ended_before(before).order_by(import_jobs.c.started_at, import_jobs.c.id)
    return [str(job_id) for job_id in conn.execute(query.limit(limit)).scalars()]


def count_ended(conn: Connection, before: datetime.datetime) -> dict[str, int]:
    """`{"jobs", "chunks", "rejects"}` a cleanup with this cutoff would delete."""
    ended = _ended_before(before).scalar_subquery()
    return {
        "jobs": _count(conn, import_jobs, import_jobs.c.id.in_(ended)),
        "chunks": _count(conn, import_chunks, import_chunks.c.job_id.in_(ended)),
        "rejects": _count(conn, import_rejects, import_rejects.c.job_id.in_(ended)),
    }


def delete_job(conn: Connection, job_id: str, before: datetime.datetime) -> dict[str, int]:
    """Delete one job with its marks and rejected rows, if it still ended before `before`
    (checked again in this transaction); returns what went."""
    still = import_jobs.c.id.in_(_ended_before(before, job_id).scalar_subquery())
    gone = conn.execute(sa.delete(import_jobs).where(import_jobs.c.id == job_id, still))
    if gone.rowcount == 0:
        return {"jobs": 0, "chunks": 0, "rejects": 0}
    rejects = conn.execute(sa.delete(import_rejects).where(import_rejects.c.job_id == job_id))
    chunks = conn.execute(sa.delete(import_chunks).where(import_chunks.c.job_id == job_id))
    return {"jobs": 1, "chunks": chunks.rowcount, "rejects": rejects.rowcount}


def add_counts(totals: Iterable[dict[str, int]]) -> dict[str, int]:
    """`delete_job`'s answers summed."""
    summed = {"jobs": 0, "chunks": 0, "rejects": 0}
    for counts in totals:
        for key, value in counts.items():
            summed[key] += value
    return summed


def _ended_before(before: datetime.datetime, job_id: str | None = None) -> sa.Select[Any]:
    """The ids of jobs that ended before `before` (only `job_id`'s, when given)."""
    jobs, chunks = import_jobs.c, import_chunks.c
    marks = sa.select(
        chunks.job_id, sa.func.count().label("written"),
        sa.func.max(chunks.finished_at).label("last"),
    ).where(chunks.outcome != "writing")
    if job_id is not None:
        marks = marks.where(chunks.job_id == job_id)
    progress = marks.group_by(chunks.job_id).subquery()
    stopped = sa.and_(jobs.state.in_(_ENDED), jobs.ended_at < before)
    finished = sa.and_(
        jobs.state == "running", jobs.chunk_count.is_not(None),
        sa.func.coalesce(progress.c.written, 0) >= jobs.chunk_count,
        sa.func.coalesce(progress.c.last, jobs.started_at) < before,
    )
    query = sa.select(jobs.id).select_from(
        import_jobs.outerjoin(progress, progress.c.job_id == jobs.id)
    ).where(sa.or_(stopped, finished))
    return query if job_id is None else query.where(jobs.id == job_id)


def _count(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(where))
               .scalar_one())
