"""Resuming an import of a PostgreSQL table read through a URL with a password: the job keeps
the URL with its password masked (never the password), so a resume by job id asks for the
URL again, refuses one naming another source, and with it sends only the missing chunks.
The server trusts local connections, so it ignores the password: what is tested is what the
registry stores and asks for, not the server's login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from registry import DynamicModelRegistry, ValidationFailed
from registry.errors import SourceUnreadable
from registry.imports import import_jobs
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.import_contract import PERMISSIONS, Person
from tests.unit.test_import_resume import Losing

from .test_imports_postgres import postgres_table_source

pytestmark = pytest.mark.integration

ROWS, CHUNK = 1000, 100
PASSWORD = "s3cret-Pw"


@pytest.fixture
def registry(postgres_url: str) -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(postgres_url)
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    yield registry
    registry.close()


@pytest.fixture
def source_url(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database holding a `people` table; its URL carries a password."""
    url = create_postgres_database("dmr_source")
    try:
        postgres_table_source(url, ROWS, tmp_path)
        yield sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    finally:
        drop_postgres_database(url)


def with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def stored_jobs(registry: DynamicModelRegistry) -> str:
    """Every stored job row, as text."""
    with registry.database.read() as conn:
        rows = conn.execute(sa.select(import_jobs)).mappings().all()
    return json.dumps([dict(row) for row in rows], default=str)


def test_a_job_read_through_a_password_url_resumes_with_the_url_given_again(
    registry: DynamicModelRegistry, source_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    losing = Losing(registry, {3, 7})
    monkeypatch.setattr(registry.imports, "run_chunk", losing)
    resource: dict[str, Any] = {"kind": "sql", "location": source_url, "table": "people"}
    status = registry.import_records("Person", resource, user_id="u", user_role="admin",
                                     options={"chunk_size": CHUNK})
    job = status["job_id"]
    assert (status["state"], status["chunks"], status["chunk_count"]) == ("running", 8, 10)
    assert source_url.count(PASSWORD) == 1 and PASSWORD not in stored_jobs(registry)
    definition = registry.imports.definition(job)
    assert PASSWORD not in json.dumps(definition)
    assert definition["source"]["location"] == source_url.replace(PASSWORD, "***")
    losing.lost, losing.sent = set(), []

    with pytest.raises(SourceUnreadable, match="password is not stored") as missing:
        registry.resume_import(job)
    assert PASSWORD not in missing.value.message
    other = sa.make_url(source_url).set(database="postgres").render_as_string(
        hide_password=False)
    with pytest.raises(ValidationFailed, match="names") as elsewhere:
        registry.resume_import(job, source_url=other)
    assert PASSWORD not in json.dumps(elsewhere.value.to_dict())
    with pytest.raises(ValidationFailed, match="not an SQLAlchemy URL"):
        registry.resume_import(job, source_url="::not a url::")
    assert losing.sent == []

    # The password is no part of the job's identity: a changed one names the same job.
    resumed = registry.resume_import(job, source_url=with_password(source_url, "rotated"))
    assert losing.sent == [3, 7]
    assert (resumed["job_id"], resumed["state"], resumed["done"]) == (job, "finished", ROWS)
    assert registry.list("Person", "u", "admin", count="exact")["total"] == ROWS
    assert "rotated" not in stored_jobs(registry) and PASSWORD not in stored_jobs(registry)
