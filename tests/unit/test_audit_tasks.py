"""The audit tasks in-process (as a worker runs them), the threshold trigger, beat and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registry import DynamicModelRegistry, RecordNotFound, Settings, ValidationFailed
from registry.operations import RecordAsOf, RecordHistory
from registry.tables import audit_outbox
from tasks.audit import CompactionTrigger
from tests.unit.support import run_task
from workers import cli
from workers.app import app
from workers.config import beat_schedule

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")


class Product(BaseModel):
    name: str
    price: float


PERMISSIONS = {"fields": {"price": {"read_roles": ["admin"], "mask": "redact"}}}



@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(
        settings=Settings().with_overrides(audit={"batch_size": 2})
    )
    registry.register_model("Product", Product, permissions=PERMISSIONS)
    app.use_registry(registry)
    yield registry
    app.close_registry()



def test_audit_tasks_compact_verify_stats_and_purge(registry: DynamicModelRegistry) -> None:
    for i in range(5):
        registry.create("Product", {"name": f"p{i}", "price": 2.0}, "u1", "admin")

    assert run_task("audit.compact") == {"blocks": 2, "entries": 4}
    assert run_task("audit.compact", force=True) == {"blocks": 1, "entries": 1}
    stats = run_task("audit.stats")
    assert (stats["entries"], stats["blocks"], stats["pending"]) == (5, 3, 0)
    assert run_task("audit.stats", model="Other")["entries"] == 0
    assert run_task("audit.verify")["ok"] is True
    assert run_task("audit.purge")["blocks"] == 0  # nothing is 90 days old


def test_audit_history_task_filters_and_masks(registry: DynamicModelRegistry) -> None:
    record = registry.create("Product", {"name": "a", "price": 2.0}, "alice", "admin")
    registry.update("Product", record["id"], {"price": 3.0}, "bob", "admin")
    run_task("audit.compact", force=True)
    registry.create("Product", {"name": "b", "price": 4.0}, "alice", "admin")

    by_record = run_task("audit.history", model="Product", record_id=record["id"],
                    user_id="u9", user_role="user")["entries"]
    assert [e["operation"] for e in by_record] == ["create", "update"]
    assert by_record[1]["changes"]["price"] == {"old": "***", "new": "***"}
    by_actor = run_task("audit.history", model="Product", user_role="admin", actor="alice")
    assert [e["changes"]["name"]["new"] for e in by_actor["entries"]] == ["a", "b"]
    later = by_record[1]["timestamp"]
    since = run_task("audit.history", model="Product", user_role="admin", since=later)["entries"]
    assert [e["operation"] for e in since] == ["update", "create"]
    with pytest.raises(ValidationFailed, match="'since' must be an ISO 8601 time"):
        run_task("audit.history", model="Product", user_role="admin", since="yesterday")


def test_records_as_of_task(registry: DynamicModelRegistry) -> None:
    record = registry.create("Product", {"name": "a", "price": 2.0}, "u1", "admin")
    [created] = registry.history("Product", record["id"], user_role="admin")
    registry.delete("Product", record["id"], "u1", "admin")

    at = created.timestamp.isoformat()
    then = run_task("records.as_of", model="Product", record_id=record["id"], at=at,
               user_id="u2", user_role="user")
    assert then["name"] == "a" and then["price"] == "***"
    with pytest.raises(RecordNotFound):
        run_task("records.as_of", model="Product", record_id=record["id"],
            at="2000-01-01T00:00:00", user_id="u2", user_role="admin")


def _as_of(at: object) -> RecordAsOf:
    return RecordAsOf.decode(
        {"model": "P", "record_id": "r", "at": at, "user_id": None, "user_role": "admin"}
    )


def test_time_arguments_take_iso_8601_and_naive_means_utc() -> None:
    history = RecordHistory.decode({"model": "P", "since": None, "user_role": "admin"})
    assert history.since is None
    assert _as_of("2026-01-01T10:00:00").at.isoformat() == "2026-01-01T10:00:00+00:00"
    assert _as_of("2026-01-01T12:00:00+02:00").at.hour == 10
    with pytest.raises(ValidationFailed, match="'at'"):
        _as_of(None)


class FakeTask:
    def __init__(self, name: str) -> None:
        self.name = name


def test_the_trigger_checks_every_n_record_tasks_and_sends_at_most_once_a_second() -> None:
    now = [100.0]
    checks: list[int] = []
    sent: list[int] = []

    def pending_at_least(count: int) -> bool:
        checks.append(count)
        return True

    trigger = CompactionTrigger(pending_at_least, lambda: sent.append(1), every=3,
                                threshold=50, clock=lambda: now[0])
    for _ in range(3):
        trigger(sender=FakeTask("records.create"), state="SUCCESS")
    assert checks == [50] and len(sent) == 1
    trigger(sender=FakeTask("audit.compact"), state="SUCCESS")
    trigger(sender=FakeTask("records.create"), state="FAILURE")
    for _ in range(3):
        trigger(sender=FakeTask("records.update"), state="SUCCESS")
    assert len(sent) == 1  # within the second
    now[0] += 1.5
    for _ in range(3):
        trigger(sender=FakeTask("records.update"), state="SUCCESS")
    assert len(sent) == 2


def test_the_trigger_sends_nothing_below_the_threshold(registry: DynamicModelRegistry) -> None:
    sent: list[int] = []
    trigger = CompactionTrigger(registry.audit_logger.pending_at_least, lambda: sent.append(1),
                                every=1, threshold=2, min_interval=0)
    registry.create("Product", {"name": "a", "price": 2.0}, "u1", "admin")
    trigger(sender=FakeTask("records.create"), state="SUCCESS")
    assert sent == []
    registry.create("Product", {"name": "b", "price": 2.0}, "u1", "admin")
    trigger(sender=FakeTask("records.create"), state="SUCCESS")
    assert sent == [1]


def test_beat_runs_compaction_and_purge_on_the_audit_queue() -> None:
    settings = Settings().with_overrides(
        audit={"compact_interval_seconds": 3, "purge_interval_seconds": 600}
    )
    schedule = beat_schedule(settings)
    assert schedule["audit-compact"]["task"] == "audit.compact"
    assert schedule["audit-compact"]["schedule"] == 3
    assert schedule["audit-purge"]["schedule"] == 600
    for name in ("audit.compact", "audit.purge"):
        assert app.amqp.router.route({}, name)["queue"].name == "audit"


def test_the_command_line_verifies_the_trail(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'dmr.sqlite3'}"
    monkeypatch.setenv("DMR_DATABASE_URL", url)
    registry = DynamicModelRegistry(url)
    registry.register_model("Product", Product)
    registry.create("Product", {"name": "a", "price": 2.0}, "u1", "admin")

    assert cli.main(["audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 1

    with registry.database.write() as conn:
        conn.execute(sa.update(audit_outbox).values(user_id="mallory"))
    assert cli.main(["audit", "verify", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
    registry.close()
