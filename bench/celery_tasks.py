"""Two bench-only tasks on the project's own Celery app, for `bench.bench_celery`.

Workers run `celery -A bench.celery_tasks worker`: this module imports `workers.app:app`
unchanged (settings, queues, routes, late acks, prefetch 1, JSON only, events, the
project's tasks) and adds two bare tasks beside the project's, so the three workloads share
one configuration and differ only in what a task does:

- `bench.noop()` returns None: the cost of Celery, the broker and the result backend alone.
- `bench.raw_insert(name, price, description, is_active)` validates its keyword arguments
  with a small Pydantic model and inserts one row with SQLAlchemy Core in its own
  transaction, returning the new id. Its engine is created in the process that runs it,
  after the fork, from the same `database.url` and `database.pool_size` settings as the
  registry's; as a bare baseline it has SQLAlchemy's defaults (no `pool_pre_ping`).

Neither name has a route, so both land on the default queue, `crud`, which the bench
producer also names explicitly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from celery import signals

from registry.audit import utc_now
from workers.app import app

from .workload import RAW_TABLE, Product

__all__ = ["app", "noop", "raw_insert"]


class _RawEngine:
    """One engine per process, replaced when a fork makes this a new process."""

    def __init__(self) -> None:
        self._engine: sa.Engine | None = None
        self._pid: int | None = None

    def get(self) -> sa.Engine:
        if self._engine is None or self._pid != os.getpid():
            self._engine = sa.create_engine(
                app.settings.database.url, pool_size=app.settings.database.pool_size
            )
            self._pid = os.getpid()
        return self._engine

    def dispose(self, **_: Any) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = self._pid = None


_engine = _RawEngine()
_insert = sa.insert(RAW_TABLE)
signals.worker_process_init.connect(lambda **_: _engine.get(), weak=False)
signals.worker_process_shutdown.connect(_engine.dispose, weak=False)


def bench_task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """Register the decorated function as the plain task `name` (Celery's Task, no base)."""

    def register(function: Callable[..., Any]) -> Any:
        return app.task(name=name)(function)

    return register


@bench_task("bench.noop")
def noop() -> None:
    return None


@bench_task("bench.raw_insert")
def raw_insert(**kwargs: Any) -> str:
    product = Product.model_validate(kwargs)
    now = utc_now()
    row_id = str(uuid.uuid4())
    with _engine.get().begin() as conn:
        conn.execute(
            _insert,
            {
                "id": row_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": "bench",
                "updated_by": "bench",
                **product.model_dump(),
            },
        )
    return row_id
