"""Edge cases found in a second review of tasks/, workers/ and the audit pipeline.

Each test states the behaviour the design or README promises and that once failed; its
docstring says how. SQLite only, in-process (tasks run through `Task.apply`, as a worker runs
them).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registry import DynamicModelRegistry, RegistryError, Settings, ValidationFailed
from registry.tables import audit_blocks, audit_outbox
from tasks.base import JSONResult
from tests.unit.support import SteppingClock
from workers import cli
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Product(BaseModel):
    name: str
    price: float


class Profile(BaseModel):
    name: str
    deleted: bool = False
    meta: dict[str, str] = {}




@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def registry(clock: SteppingClock) -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry(
        settings=Settings().with_overrides(
            audit={"batch_size": 2}, models={"audit_retention_days": 30}
        ),
        clock=clock,
    )
    registry.register_model("Product", Product)
    registry.register_model("Profile", Profile)
    app.use_registry(registry)
    yield registry
    app.close_registry()


def apply(name: str, /, task_id: str | None = None, **kwargs: Any) -> Any:
    """Run a task as a worker would; returns the raw result (a JSONResult or the exception)."""
    return app.tasks[name].apply(kwargs=kwargs, task_id=task_id).result


def execute(registry: DynamicModelRegistry, statement: Any) -> None:
    with registry.database.write() as conn:
        conn.execute(statement)


# -- hash-chain verification gaps -----------------------------------------------------------


def test_verify_detects_a_forged_block_below_the_walked_range(
    registry: DynamicModelRegistry,
) -> None:
    """`_walk_blocks` once started at `id > anchor_block_id or 0` while history read every
    block: a block inserted with id 0 (or, after a purge, any id <= the anchor) was never
    verified, yet its entries showed up in history. Now verify reports it and history skips
    it."""
    record = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    registry.update("Product", record["id"], {"price": 2.0}, "u", "admin")
    registry.audit_logger.compact(force=True)
    with registry.database.write() as conn:
        forged = dict(conn.execute(sa.select(audit_blocks)).mappings().one())
        forged.update(id=0, hash="f" * 64)
        conn.execute(sa.insert(audit_blocks), forged)

    assert len(registry.history("Product", record["id"], user_role="admin")) == 2
    assert registry.audit_logger.verify()["ok"] is False


def test_verify_detects_a_deleted_pending_entry(registry: DynamicModelRegistry) -> None:
    """README: `dmr audit verify` 'exits 1 when something was altered or removed'. A pending
    entry deleted from the outbox was not noticed (each row is hashed alone); now each
    record's versions must run on, and its last entry must match its row."""
    record = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    registry.update("Product", record["id"], {"price": 2.0}, "u", "admin")
    execute(registry, sa.delete(audit_outbox).where(audit_outbox.c.operation == "update"))

    report = registry.verify_audit()  # what `dmr audit verify` and `audit.verify` run
    assert report["ok"] is False and "version" in report["reason"]


def test_verify_detects_reordered_pending_entries(registry: DynamicModelRegistry) -> None:
    """The entry hash does not cover `seq`, so swapping the seqs of two pending entries
    passes verification; compaction then seals the forged order into the chain for good."""
    record = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    registry.update("Product", record["id"], {"price": 2.0}, "u", "admin")
    registry.update("Product", record["id"], {"price": 3.0}, "u", "admin")
    with registry.database.write() as conn:
        seqs = list(conn.execute(sa.select(audit_outbox.c.seq).order_by(audit_outbox.c.seq))
                    .scalars())
        first, second = seqs[1], seqs[2]
        seq = audit_outbox.c.seq
        conn.execute(sa.update(audit_outbox).where(seq == first).values(seq=-1))
        conn.execute(sa.update(audit_outbox).where(seq == second).values(seq=first))
        conn.execute(sa.update(audit_outbox).where(seq == -1).values(seq=second))

    # The effect: the record's latest state now reads as 2.0, though 3.0 was written last.
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3650)
    assert registry.as_of("Product", record["id"], now, user_role="admin")["price"] == 2.0
    assert registry.audit_logger.verify()["ok"] is False


# -- retention and point-in-time reads -----------------------------------------------------


def test_as_of_after_retention_purge_does_not_invent_a_partial_record(
    registry: DynamicModelRegistry, clock: SteppingClock
) -> None:
    """Once the block holding a record's `create` is purged, `record_as_of` starts from the
    first remaining `update` and returns a record without its other fields and with the
    update's time as `created_at`, instead of saying the history is gone."""
    created = registry.create("Product", {"name": "Laptop", "price": 1.0}, "u", "admin")
    registry.audit_logger.compact(force=True)
    clock.advance(days=40)
    registry.update("Product", created["id"], {"price": 2.0}, "u", "admin")
    assert registry.audit_logger.purge()["blocks"] == 1

    try:
        seen = registry.as_of("Product", created["id"], clock(), user_role="admin")
    except RegistryError:
        return  # a typed "history no longer reaches back" answer is fine
    assert seen.get("name") == "Laptop"
    assert seen["created_at"] == created["created_at"]


# -- time arguments --------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_as_of_with_a_time_out_of_range_in_utc_gives_a_typed_error(
    registry: DynamicModelRegistry, moment: str
) -> None:
    """`parse_time` converts to UTC outside its try: OverflowError reaches the producer."""
    record = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    error = apply("records.as_of", model="Product", record_id=record["id"], at=moment,
                  user_id="u", user_role="admin")
    assert isinstance(error, ValidationFailed), repr(error)
    error = apply("audit.history", model="Product", since=moment, user_role="admin")
    assert isinstance(error, ValidationFailed), repr(error)


# -- identifiers in history / as_of ---------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "arguments"),
    [
        ("records.history", {"record_id": {"x": 1}, "user_id": "u"}),
        ("records.as_of", {"record_id": ["x"], "user_id": "u", "at": "2026-01-01T00:00:00Z"}),
        ("audit.history", {"record_id": {"x": 1}}),
        ("audit.history", {"actor": {"x": 1}}),
    ],
)
def test_history_and_as_of_validate_their_identifiers(
    registry: DynamicModelRegistry, task: str, arguments: dict[str, Any]
) -> None:
    """records.read answers a non-string record_id with ValidationFailed; history, as_of and
    audit.history send it to the database and answer RuntimeError('The database refused the
    operation ...'), which is neither typed nor clear."""
    error = apply(task, model="Product", user_role="admin", **arguments)
    assert isinstance(error, ValidationFailed), repr(error)


# -- Flower / log display of results -------------------------------------------------------


def test_result_shown_to_flower_hides_values_nested_in_a_field(
    registry: DynamicModelRegistry,
) -> None:
    """`_result_item` treats 'id', 'created_by', ... as plain at every depth, and 'deleted'
    True as plain anywhere: a dict field holding an "id" key, or a bool field named
    'deleted', shows its value in the task-succeeded event and the worker's success log."""
    record = registry.create(
        "Profile",
        {"name": "n", "deleted": True, "meta": {"id": "SSN-123-45-6789", "updated_by": "bob"}},
        "u", "admin",
    )
    result = apply("records.read", model="Profile", record_id=record["id"], user_id="u",
                   user_role="admin")
    assert isinstance(result, JSONResult)
    shown = repr(result)
    assert "SSN-123-45-6789" not in shown and "bob" not in shown, shown
    assert "'deleted': True" not in shown, shown


# -- at-least-once without a key ------------------------------------------------------------


def test_a_redelivered_create_without_a_key_writes_once(registry: DynamicModelRegistry) -> None:
    """README: 'a redelivered create still makes exactly one record and one audit entry'.
    A raw producer that sends no idempotency_key gets two records when the same message
    (same task id) is delivered twice, though the worker has the task id to key on."""
    task_id = str(uuid.uuid4())
    for _ in range(2):
        apply("records.create", task_id=task_id, model="Product",
              data={"name": "a", "price": 1.0}, user_id="u", user_role="admin")
    assert registry.list("Product", "u", "admin")["total"] == 1


# -- command line ---------------------------------------------------------------------------


def run_cli(argv: list[str]) -> Any:
    """The exit status of `dmr argv`: an int, or the message given to sys.exit."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("content", ["[1, 2]", '"text"'])
@pytest.mark.parametrize("with_name", [False, True])
def test_register_with_a_schema_file_that_is_not_an_object_gives_a_clear_error(
    tmp_path: Path, content: str, with_name: bool
) -> None:
    """`dmr models register` crashed with AttributeError / TypeError / ValueError tracebacks;
    it is a usage error (exit 2) naming what it expected."""
    schema = tmp_path / "schema.json"
    schema.write_text(content)
    code = run_cli(["models", "register", str(schema), *(["--name", "X"] if with_name else [])])
    assert code == 2


def test_audit_verify_does_not_report_an_unreachable_database_as_a_broken_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dmr audit verify` exits 1 for 'altered or removed'; a database it cannot open gave
    a traceback and the same exit status 1, so an alert could not tell an outage from
    tampering. It is 3, unavailable."""
    monkeypatch.setenv("DMR_SETTINGS", str(PROJECT_ROOT / "settings.toml"))
    monkeypatch.setenv("DMR_DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/dmr.sqlite3")
    code = run_cli(["audit", "verify"])
    assert code == 3


def test_demo_with_a_data_dir_that_is_a_file_gives_a_clear_error(tmp_path: Path) -> None:
    """`dmr demo --data-dir FILE` ends in a FileExistsError traceback."""
    target = tmp_path / "file"
    target.write_text("")
    code = run_cli(["demo", "--data-dir", str(target)])
    assert code not in (0, None)

