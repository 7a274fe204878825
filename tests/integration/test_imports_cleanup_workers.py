"""The import cleanup through real workers: a job that ended long ago goes with its marks and
rejected rows, its records keep their history (the batch payloads stay), a dry run deletes
nothing, and the same import run again afterwards is a new job with records of their own."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from registry.errors import ImportNotFound, PermissionDenied
from tasks.client import RegistryClient
from tests.import_contract import FIELD_MAP

from .conftest import WorkerProcess
from .test_imports_workers import (  # noqa: F401  (fixtures)
    count,
    engine,
    expected_bad,
    model,
    people_csv,
)

pytestmark = pytest.mark.integration

ROWS = 600


@pytest.fixture(scope="module")
def import_worker(start_worker: Any, workers: Any) -> WorkerProcess:
    """An import worker of this module's own (worker names are unique in a session)."""
    worker: WorkerProcess = start_worker("impclean", queues="imports")
    return worker


def backdate(database: sa.Engine, job: str, days: int) -> None:
    """Make the job look as if it finished `days` ago (only this job: the database is the
    session's)."""
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    with database.begin() as conn:
        conn.execute(sa.text("UPDATE dmr_import_jobs SET started_at = :t WHERE id = :j"),
                     {"t": long_ago, "j": job})
        conn.execute(sa.text("UPDATE dmr_import_chunks SET finished_at = :t WHERE job_id = :j"),
                     {"t": long_ago, "j": job})


def test_cleanup_through_the_workers_keeps_records_and_their_history(
    client: RegistryClient, import_worker: WorkerProcess, model: str,  # noqa: F811
    engine: sa.Engine, tmp_path: Path,  # noqa: F811
) -> None:
    source = people_csv(tmp_path / "people.csv", ROWS)
    arguments: dict[str, Any] = {"user_id": "l", "user_role": "admin", "field_map": FIELD_MAP,
                                 "options": {"chunk_size": 100}, "timeout": 120}
    first = client.import_records(model, source, **arguments)
    job, good = first["job_id"], ROWS - expected_bad(ROWS)
    record = client.list(model, "u", "admin", page_size=1).get()["items"][0]
    payloads = "SELECT count(*) FROM dmr_audit_batches WHERE model = :m"
    assert count(engine, payloads, m=model) == first["chunk_count"]
    backdate(engine, job, 40)

    planned = client.cleanup_imports(30, dry_run=True, user_id="a", user_role="admin").get()
    assert (planned["jobs"], planned["chunks"], planned["rejects"]) == (
        1, first["chunk_count"], expected_bad(ROWS))
    assert client.import_status(job).get()["state"] == "finished"  # the dry run wrote nothing
    with pytest.raises(PermissionDenied):
        client.cleanup_imports(30, user_id="c", user_role="clerk").get()
    done = client.cleanup_imports(30, user_id="a", user_role="admin").get()
    assert {key: done[key] for key in ("jobs", "chunks", "rejects")} == {
        key: planned[key] for key in ("jobs", "chunks", "rejects")}

    with pytest.raises(ImportNotFound):
        client.import_status(job).get()
    assert count(engine, "SELECT count(*) FROM dmr_import_rejects WHERE job_id = :j", j=job) == 0
    assert count(engine, "SELECT count(*) FROM dmr_import_chunks WHERE job_id = :j", j=job) == 0
    assert count(engine, payloads, m=model) == first["chunk_count"]
    history = client.history(model, record["id"], "u", "admin").get()
    assert [entry["operation"] for entry in history] == ["create"]
    assert history[0]["changes"]["name"]["new"] == record["name"]

    again = client.import_records(model, source, **arguments)
    assert again["job_id"] == job and (again["state"], again["done"]) == ("finished", good)
    table = f"dmr_r_{model.lower()}"
    assert count(engine, f"SELECT count(DISTINCT id) FROM {table}") == 2 * good
