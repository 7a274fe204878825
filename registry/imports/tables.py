"""The tables of import jobs: jobs, chunk completion marks and rejected rows.

A chunk's mark is inserted first in the transaction that writes the chunk's records, so a
second delivery of the same chunk waits for the first and then finds the mark: the chunk is
written once. Status is computed from the marks, which are the source of truth.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..tables import JSONType, UTCDateTime, catalog

__all__ = ["import_chunks", "import_jobs", "import_rejects"]

import_jobs = sa.Table(
    "dmr_import_jobs",
    catalog,
    # Derived from the job's arguments (see jobs.job_id_for): the same command run again
    # names the same job.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    # {"kind", "location", "table"?, "sha256"?, "columns": [...]}
    sa.Column("source", JSONType, nullable=False),
    # {source column: field}
    sa.Column("field_map", JSONType, nullable=False),
    # {"chunk_size", "on_error", "mode", "key"}
    sa.Column("options", JSONType, nullable=False),
    sa.Column("user_id", sa.String(200)),
    sa.Column("user_role", sa.String(200), nullable=False),
    # running | cancelled | aborted; finished is read from the marks.
    sa.Column("state", sa.String(16), nullable=False),
    # Rows read and chunks sent, known once the producer has read the whole source.
    sa.Column("total", sa.BigInteger),
    sa.Column("chunk_count", sa.Integer),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("reason", sa.Text),
)

import_chunks = sa.Table(
    "dmr_import_chunks",
    catalog,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("chunk_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("first_row", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    # written | skipped (the job was cancelled or aborted first) | aborted (it had bad rows)
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=False),
)

import_rejects = sa.Table(
    "dmr_import_rejects",
    catalog,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("row_number", sa.BigInteger, primary_key=True, autoincrement=False),
    # {field: the source's original value}
    sa.Column("source_values", JSONType, nullable=False),
    # [{"loc": [...], "msg", "type"}], without input values
    sa.Column("errors", JSONType, nullable=False),
)
