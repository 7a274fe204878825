"""Issue 9 item 4: a database limit is a typed error at once, not an outage retried for half a
minute. Through the shared workers, on PostgreSQL."""

from __future__ import annotations

import time

import pytest

from registry.errors import DatabaseLimitExceeded
from tasks.client import RegistryClient

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

#: Well below the retry budget (five retries with backoff took 20-40 s).
PROMPT_SECONDS = 10


def _schema(fields: int) -> dict[str, object]:
    return {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(fields)}}


def test_a_model_too_wide_for_postgresql_is_refused_at_registration(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    name = unique("Wide")
    started = time.monotonic()
    with pytest.raises(DatabaseLimitExceeded, match="at most 1600 columns") as refused:
        client.register_model(name, _schema(1700), user_role="admin").get()
    assert time.monotonic() - started < PROMPT_SECONDS
    assert refused.value.details["fields"] == 1700
    assert 1590 <= refused.value.details["limit"] < 1600
    assert name not in {model["name"] for model in client.list_models().get()}


def test_a_row_too_big_for_postgresql_is_a_typed_error_at_once(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    name = unique("Broad")
    client.register_model(name, _schema(1500), user_role="admin").get()
    # 1500 short texts stay inline (too small to be moved out of the row): the row passes
    # PostgreSQL's 8 KB page, which it refuses with "row is too big" (SQLSTATE 54000).
    data = {f"f{i}": "x" * 12 for i in range(1500)}
    started = time.monotonic()
    with pytest.raises(DatabaseLimitExceeded, match="54000"):
        client.create(name, data, "t", "admin").get()
    assert time.monotonic() - started < PROMPT_SECONDS
    assert client.list(name, "t", "admin").get()["total"] == 0
