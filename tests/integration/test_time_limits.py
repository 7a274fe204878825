"""Issue 9, "Also": every task runs within time limits from settings. A registration held up
by a database lock stops at the soft limit with `TaskTimeLimitExceeded`; a pool child that does
not stop (here: stopped by SIGSTOP while it waits) is killed at the hard limit, its producer gets
the same typed error, and the worker goes on with a new child. Neither writes anything.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery.utils.nodenames import worker_direct

from registry.errors import TaskTimeLimitExceeded
from registry.settings import Settings
from tasks.client import RegistryClient, TaskHandle

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

SOFT_SECONDS = 1
HARD_SECONDS = 3
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}


@pytest.fixture(scope="module")
def limited(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, RegistryClient]]:
    env = {
        **service_env,
        "DMR_CELERY__TASK_SOFT_TIME_LIMIT": str(SOFT_SECONDS),
        "DMR_CELERY__TASK_TIME_LIMIT": str(HARD_SECONDS),
    }
    log = tmp_path_factory.mktemp("limits") / "limited.log"
    worker = WorkerProcess("limited@dmrtest", "registry", env, log).start(concurrency=1)
    client = RegistryClient.from_settings(Settings.load(environ=env))
    _registered(worker, client)  # the catalog (and the row registrations lock) exists
    yield worker, client
    worker.stop()
    client.close()


def _register(worker: WorkerProcess, client: RegistryClient, name: str) -> TaskHandle:
    result = client.app.send_task(
        "registry.register_model", queue=worker_direct(worker.hostname).name,
        kwargs={"name": name, "schema": SCHEMA, "user_role": "admin"},
    )
    return TaskHandle(result, timeout=30, interval=0.01)


def _registered(worker: WorkerProcess, client: RegistryClient) -> set[str]:
    result = client.app.send_task("registry.list_models", queue=worker_direct(worker.hostname).name)
    return {model["name"] for model in TaskHandle(result, timeout=30, interval=0.01).get()}


def _pool_child(worker: WorkerProcess) -> int:
    assert worker.process is not None
    children = [
        int(entry.name) for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent(entry) == worker.process.pid
    ]
    assert len(children) == 1, children
    return children[0]


def _parent(entry: Path) -> int:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


@pytest.fixture
def registration_lock(database_url: str) -> Iterator[None]:
    """Hold the row every registration locks first, so a registration waits while it is held."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT version FROM dmr_registry_state WHERE id = 1 FOR UPDATE"))
        yield
        conn.rollback()
    engine.dispose()


def test_a_task_past_its_soft_limit_stops_with_a_typed_error(
    limited: tuple[WorkerProcess, RegistryClient], registration_lock: None
) -> None:
    worker, client = limited
    name = unique("Soft")
    started = time.monotonic()
    with pytest.raises(TaskTimeLimitExceeded, match="soft time limit of 1 s") as raised:
        _register(worker, client, name).get()
    assert SOFT_SECONDS <= time.monotonic() - started < HARD_SECONDS + 5
    assert raised.value.details["hard"] is False
    # A time limit is the system's fault, not the caller's: it is logged with its traceback.
    lines = _logged(worker, "raised unexpected: TaskTimeLimitExceeded")
    logged = next(i for i, line in enumerate(lines) if "raised unexpected: TaskTimeLimitExceeded"
                  in line)
    assert lines[logged + 1].startswith("Traceback")


def test_a_task_past_its_hard_limit_is_killed_and_its_producer_answered(
    limited: tuple[WorkerProcess, RegistryClient], database_url: str
) -> None:
    worker, client = limited
    name = unique("Hard")
    engine = sa.create_engine(database_url)
    child = _pool_child(worker)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT version FROM dmr_registry_state WHERE id = 1 FOR UPDATE"))
            handle = _register(worker, client, name)
            _wait_for_lock_waiter(engine)
            # A child that ignores its soft limit: stopped, it cannot even see the signal.
            os.kill(child, signal.SIGSTOP)
            with pytest.raises(TaskTimeLimitExceeded, match="hard time limit of 3 s") as raised:
                handle.get()
            assert raised.value.details["hard"] is True
            conn.rollback()
    finally:
        engine.dispose()
        try:
            os.kill(child, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert worker.process is not None and worker.process.poll() is None
    assert name not in _registered(worker, client)
    assert _pool_child(worker) != child
    log = worker.read_log()
    assert "Hard time limit (3.0s) exceeded for registry.register_model" in log


def test_expected_errors_are_one_line_and_faults_keep_their_traceback(
    limited: tuple[WorkerProcess, RegistryClient],
) -> None:
    worker, client = limited
    result = client.app.send_task(
        "registry.set_permissions", queue=worker_direct(worker.hostname).name,
        kwargs={"model": "NoSuchModel", "permissions": {}, "user_role": "admin"},
    )
    with pytest.raises(Exception) as raised:
        TaskHandle(result, timeout=30, interval=0.01).get()
    assert type(raised.value).__name__ == "ModelNotFound"
    lines = _logged(worker, f"{result.id}] raised")
    expected = [i for i, line in enumerate(lines) if result.id in line]
    assert len(expected) >= 1
    failure = lines[expected[-1]]
    assert "INFO" in failure and "raised expected: ModelNotFound(" in failure
    assert "{" not in failure.split("ModelNotFound(", 1)[1]  # the message only, no details
    assert expected[-1] + 1 == len(lines) or not lines[expected[-1] + 1].startswith("Traceback")


def _logged(worker: WorkerProcess, text: str) -> list[str]:
    """The worker's log lines once `text` is among them (Celery logs a failure just after it
    stores the result that the producer already has)."""
    deadline = time.monotonic() + 10
    while text not in worker.read_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker.read_log().splitlines()


def _wait_for_lock_waiter(engine: sa.Engine) -> None:
    """Until a session waits for a lock (the task is running). Polled from a connection of its
    own: PostgreSQL keeps one snapshot of pg_stat_activity per transaction."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )).scalar_one()
        if waiting:
            return
        time.sleep(0.05)
    pytest.fail("The registration never waited for the lock.")
