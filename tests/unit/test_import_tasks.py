"""The import tasks in-process: names, queues, thin tasks, and what Flower may show."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from registry import DynamicModelRegistry
from registry.errors import ImportNotFound, ValidationFailed
from tasks.names import queue_for
from tests.import_contract import FIELD_MAP, HEADER, PERMISSIONS, Person, good_row
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    app.use_registry(registry)
    yield registry
    app.close_registry()


def test_chunks_go_to_the_imports_queue_and_job_calls_do_not_wait_behind_them() -> None:
    assert queue_for("imports.chunk") == "imports"
    for name in ("imports.start", "imports.seal", "imports.status", "imports.rejects",
                 "imports.cancel", "records.create_many"):
        assert queue_for(name) == "crud"
        assert name in app.tasks


def test_an_import_through_the_tasks(registry: DynamicModelRegistry) -> None:
    job = run_task("imports.start", model="Person", source={"kind": "csv", "columns": HEADER},
                   field_map=FIELD_MAP, options={"chunk_size": 2}, user_id="u",
                   user_role="admin")
    bad = good_row(2)
    bad[1] = "x"
    done = run_task("imports.chunk", job_id=job, chunk_no=0, first_row=1,
                    rows=[good_row(1), bad])
    assert done == {"chunk": 0, "outcome": "written", "done": 1, "rejected": 1}
    status = run_task("imports.seal", job_id=job, total=2, chunk_count=1)
    assert {key: status[key] for key in ("state", "total", "done", "rejected")} == {
        "state": "finished", "total": 2, "done": 1, "rejected": 1}
    assert set(status) >= {"rows_per_s", "started_at", "finished_at"}
    page = run_task("imports.rejects", job_id=job, user_role="clerk")
    assert page["items"][0]["row"] == 2 and page["items"][0]["values"]["email"] != bad[4]
    assert run_task("imports.cancel", job_id=job)["state"] == "finished"
    with pytest.raises(ImportNotFound):
        run_task("imports.status", job_id="imp_unknown")
    with pytest.raises(ValidationFailed):
        run_task("imports.chunk", job_id=job, chunk_no=-1, first_row=1, rows=[])


def test_create_many_through_the_task(registry: DynamicModelRegistry) -> None:
    items = [dict(zip(FIELD_MAP.values(), good_row(i), strict=True)) for i in (1, 2)]
    for item in items:
        item["note"] = item["note"] or None
    made = run_task("records.create_many", model="Person", items=items, user_id="u",
                    user_role="admin")
    assert [record["name"] for record in made] == ["P1", "P2"]


def test_flower_sees_no_row_values() -> None:
    shown = app.tasks["imports.chunk"].arguments_repr(
        (), {"job_id": "imp_1", "chunk_no": 3, "first_row": 7, "rows": [["secret"]]}
    )
    assert "secret" not in shown and "imp_1" in shown and "3" in shown
    shown = app.tasks["records.create_many"].arguments_repr(
        (), {"model": "Person", "items": [{"email": "secret@example.com"}]}
    )
    assert "secret" not in shown
