"""In-process `create` against a raw SQLAlchemy Core insert-and-commit of the same rows.

Both sides write one row per transaction to a table of the same shape on the same database;
`create` also checks the registry version, permissions and field rules, validates with
Pydantic and writes its audit outbox entry in the same transaction. The figure that matters
is the ratio, which holds on a noisy machine; the goal is at least 0.60. CPU time per row
(this process, kernel time included) and its ratio are printed beside it: they move far
less when other processes share the machine, and on PostgreSQL they leave out the server's
work, so they check the Python side; the goal is the rate ratio.

    python -m bench.bench_create [--rows 2000] [--postgres URL] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import sqlalchemy as sa

from registry import DynamicModelRegistry, Settings
from registry.audit import utc_now as utc_now_for_bench

from .workload import DEFAULT_POSTGRES, RAW_TABLE, Product, rows

T = TypeVar("T")

GOAL = 0.60


class Rate(TypedDict):
    """One timed pass: rows per second, and CPU seconds per row (this process, kernel time
    included), which other processes on the machine disturb far less than the clock."""

    rows_per_second: float
    cpu_per_row: float


def timed(count: int, body: Callable[[], None]) -> Rate:
    start, cpu = time.perf_counter(), time.process_time()
    body()
    return {"rows_per_second": count / (time.perf_counter() - start),
            "cpu_per_row": (time.process_time() - cpu) / count}


def run_raw(engine: sa.Engine, table: sa.Table, data: list[dict[str, Any]]) -> float:
    """Raw rows per second (other benchmarks compare with it too)."""
    return time_raw(engine, table, data)["rows_per_second"]


def time_raw(engine: sa.Engine, table: sa.Table, data: list[dict[str, Any]]) -> Rate:
    return timed(len(data), lambda: _raw_rows(engine, table, data))


def _raw_rows(engine: sa.Engine, table: sa.Table, data: list[dict[str, Any]]) -> None:
    insert = sa.insert(table)
    for row in data:
        now = utc_now_for_bench()
        with engine.begin() as conn:
            conn.execute(
                insert,
                {
                    "id": str(uuid.uuid4()),
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "created_by": "bench",
                    "updated_by": "bench",
                    **row,
                },
            )


def time_create(registry: DynamicModelRegistry, data: list[dict[str, Any]]) -> Rate:
    return timed(len(data), lambda: _create_rows(registry, data))


def _create_rows(registry: DynamicModelRegistry, data: list[dict[str, Any]]) -> None:
    for row in data:
        registry.create("Product", row, user_id="bench", user_role="admin")


class Rates(TypedDict):
    """One backend's figures: rows per second, create's share of the raw rate, and the same
    share in CPU time per row."""

    backend: str
    raw: float
    create: float
    ratio: float
    #: CPU microseconds per row, raw and create.
    raw_cpu: float
    create_cpu: float
    cpu_ratio: float


def measure(
    name: str, url: str, count: int, rounds: int = 3, synchronous: str = "full"
) -> Rates:
    settings = Settings().with_overrides(database={"sqlite_synchronous": synchronous})
    registry = DynamicModelRegistry(url, settings=settings)
    registry.register_model("Product", Product)
    table = RAW_TABLE
    table.create(registry.database.engine)
    data = rows(count)
    time_raw(registry.database.engine, table, data[:100])  # warm both paths up
    time_create(registry, data[:100])
    raw_rates, create_rates = [], []
    for _ in range(rounds):  # interleaved, so drift on the machine hits both sides alike
        raw_rates.append(time_raw(registry.database.engine, table, data))
        create_rates.append(time_create(registry, data))
    registry.close()
    raw = statistics.median(r["rows_per_second"] for r in raw_rates)
    create = statistics.median(r["rows_per_second"] for r in create_rates)
    raw_cpu = statistics.median(r["cpu_per_row"] for r in raw_rates)
    create_cpu = statistics.median(r["cpu_per_row"] for r in create_rates)
    return {"backend": name, "raw": raw, "create": create, "ratio": create / raw,
            "raw_cpu": raw_cpu * 1e6, "create_cpu": create_cpu * 1e6,
            "cpu_ratio": raw_cpu / create_cpu}


def with_postgres_database(admin_url: str, body: Callable[[str], T]) -> T:
    """What `body` returns for the URL of a fresh PostgreSQL database, dropped afterwards."""
    name = f"dmr_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        return body(sa.make_url(admin_url).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    results: list[Rates] = []
    for synchronous in ("full", "normal"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            results.append(
                measure(f"sqlite/{synchronous}", url, args.rows, synchronous=synchronous)
            )
    if not args.skip_postgres:
        results.append(
            with_postgres_database(args.postgres, lambda url: measure("postgresql", url, args.rows))
        )
    print(f"{'backend':<16}{'raw rows/s':>12}{'create/s':>12}{'ratio':>8}"
          f"{'cpu us raw':>12}{'create':>8}{'ratio':>7}  goal >= {GOAL:.2f}")
    for r in results:
        verdict = "ok" if r["ratio"] >= GOAL else "BELOW GOAL"
        print(
            f"{r['backend']:<16}{r['raw']:>12.0f}{r['create']:>12.0f}{r['ratio']:>8.2f}"
            f"{r['raw_cpu']:>12.0f}{r['create_cpu']:>8.0f}{r['cpu_ratio']:>7.2f}  {verdict}"
        )


if __name__ == "__main__":
    main()
