"""The import cleanup's edges in-process: who may choose the age, what it refuses, the task,
its queue and schedule, and the command line's ages (`dmr imports cleanup` itself is in
test_cli_imports.py). What it deletes and keeps is in the import
contract (tests/import_contract.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import DynamicModelRegistry, PermissionDenied, ValidationFailed
from registry.imports.cleanup import delete_job
from registry.settings import Settings
from tasks.names import queue_for
from tests.import_contract import FIELD_MAP, PERMISSIONS, Person, good_row, write_csv
from tests.unit.support import run_task
from workers.app import app
from workers.cli.commands.imports import age_in_days
from workers.config import beat_schedule

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    app.use_registry(registry)
    yield registry
    app.close_registry()


def finished_import(registry: DynamicModelRegistry, tmp_path: Path) -> dict[str, Any]:
    rows = [good_row(i) for i in range(1, 6)]
    rows[1][1] = "two"
    return registry.import_records("Person", write_csv(tmp_path / "p.csv", rows), user_id="u",
                                   user_role="admin", field_map=FIELD_MAP,
                                   options={"chunk_size": 2})


def test_choosing_the_age_takes_the_management_permission(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    finished_import(registry, tmp_path)
    with pytest.raises(PermissionDenied, match="clean up import jobs"):
        registry.cleanup_imports(0, user_id="c", user_role="clerk")
    assert registry.cleanup_imports(0, dry_run=True, user_role="admin")["jobs"] == 1
    assert registry.cleanup_imports(0)["jobs"] == 1  # no role: this process's own code
    # The retention setting's age is chosen by no caller, as beat runs it.
    assert registry.cleanup_imports(user_role="clerk")["jobs"] == 0


@pytest.mark.parametrize("age", [-1, "30", True, math.inf, math.nan, 10**9, None])
def test_a_bad_age_is_refused(registry: DynamicModelRegistry, age: Any) -> None:
    if age is None:  # no age while the retention is 0 (keep jobs until asked)
        registry.settings = registry.settings.with_overrides(
            models={"import_retention_days": 0})
    with pytest.raises(ValidationFailed, match="older_than_days") as raised:
        registry.cleanup_imports(age)
    assert raised.value.errors[0]["loc"] == ["older_than_days"]


def test_dry_run_must_be_a_boolean(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ValidationFailed, match="dry_run"):
        registry.cleanup_imports(0, dry_run="false")  # type: ignore[arg-type]


def test_the_task_runs_on_the_registry_queue(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    assert queue_for("imports.cleanup") == "registry"
    assert app.amqp.router.route({}, "imports.cleanup")["queue"].name == "registry"
    status = finished_import(registry, tmp_path)
    with pytest.raises(ValidationFailed, match="user_role"):  # an age needs a role
        run_task("imports.cleanup", older_than_days=0)
    assert run_task("imports.cleanup")["jobs"] == 0  # 30 days by default
    planned = run_task("imports.cleanup", older_than_days=0, dry_run=True, user_role="admin")
    assert (planned["jobs"], planned["chunks"], planned["rejects"]) == (1, 3, 1)
    done = run_task("imports.cleanup", older_than_days=0, user_id="a", user_role="admin")
    assert (done["jobs"], done["dry_run"], done["more"]) == (1, False, False)
    assert registry.list("Person", "u", "admin")["total"] == 4
    assert status["job_id"] not in json.dumps(run_task("imports.cleanup", older_than_days=0,
                                                       user_role="admin"))


def test_beat_cleans_up_hourly_unless_the_retention_is_0() -> None:
    settings = Settings().with_overrides(audit={"purge_interval_seconds": 600})
    entry = beat_schedule(settings)["imports-cleanup"]
    assert entry == {"task": "imports.cleanup", "schedule": 600, "options": {"expires": 600}}
    kept = settings.with_overrides(models={"import_retention_days": 0})
    assert "imports-cleanup" not in beat_schedule(kept)


@pytest.mark.parametrize(("text", "days"), [
    ("30d", 30), ("12h", 0.5), ("90m", 90 / 1440), ("45s", 45 / 86400), ("2w", 14),
    (" 1.5D ", 1.5), ("0s", 0),
])
def test_ages_on_the_command_line(text: str, days: float) -> None:
    assert age_in_days(text) == pytest.approx(days)


def test_a_role_given_without_an_age_is_still_checked(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ValidationFailed, match="user_role"):
        registry.cleanup_imports(user_role=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="user_id"):
        registry.cleanup_imports(user_id="", user_role="clerk")


def cancelled_jobs(registry: DynamicModelRegistry, count: int) -> list[str]:
    """`count` jobs started and cancelled at once (each its own: another chunk size)."""
    jobs = []
    for size in range(1, count + 1):
        job = registry.imports.start("Person", {"kind": "csv", "columns": list(FIELD_MAP)},
                                     FIELD_MAP, {"chunk_size": size}, "u", "admin")
        registry.imports.cancel(job)
        jobs.append(job)
    return jobs


def test_a_call_takes_a_bounded_number_of_jobs_and_says_more_wait(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("registry.imports.jobs.MAX_JOBS_PER_CALL", 2)
    cancelled_jobs(registry, 5)
    assert registry.cleanup_imports(0, dry_run=True)["jobs"] == 5  # a dry run counts all
    calls = [registry.cleanup_imports(0) for _ in range(3)]
    assert [(call["jobs"], call["more"]) for call in calls] == [(2, True), (2, True), (1, False)]


def test_a_job_goes_only_if_it_still_ended_before_the_cutoff(
    registry: DynamicModelRegistry,
) -> None:
    """Each deletion checks again in its own transaction (a live job is never taken)."""
    (ended,) = cancelled_jobs(registry, 1)
    live = registry.imports.start("Person", {"kind": "csv", "columns": list(FIELD_MAP)},
                                  FIELD_MAP, {"chunk_size": 9}, "u", "admin")
    now = datetime.datetime.now(datetime.UTC)
    with registry.database.write() as conn:
        assert delete_job(conn, live, now + datetime.timedelta(days=1))["jobs"] == 0
        assert delete_job(conn, ended, now - datetime.timedelta(days=1))["jobs"] == 0
    assert registry.imports.status(live)["state"] == "running"
    assert registry.imports.status(ended)["state"] == "cancelled"
