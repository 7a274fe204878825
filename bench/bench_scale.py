"""Listing a 1,000,000-row model on PostgreSQL: pages, filters and order, in-process and
through Celery; and the longest create while indexes build concurrently.

Setup: a fresh database; model `Scale` (four fields) registered, then 1,000,000 rows loaded
with one INSERT ... SELECT over generate_series (a bench shortcut: the rows have no audit
entries), then VACUUM ANALYZE.

1. Index builds under writes. A writer thread creates records one at a time throughout; its
   latencies are taken (a) with no build running (the baseline), (b) while a plain
   CREATE INDEX on `name` runs (what a build that locks out writes costs), (c) while
   re-registering the model with `"x-index"` on `category` and `price` builds both
   indexes with CREATE INDEX CONCURRENTLY.
2. In-process `list` (the registry object, no broker): the first page, a page in the middle
   by cursor, an equality and a range filter on indexed fields, `order_by` an indexed field
   (a middle page by cursor); each p50 should be at most 5 ms. For contrast, in the same run:
   an exact count of the whole table and the deepest offset page allowed.
3. The same calls through Celery (RabbitMQ broker, Redis results, one real worker): each p50
   against a no-op task's round trip measured alongside; goal at most 1.5 times.

    python -m bench.bench_scale [--rows 1000000] [--calls 200] [--no-celery | --celery-only]

`--celery-only` skips the index builds under writes (the indexes are declared before the
rows are loaded instead) and the in-process timings: the quick way to iterate on part 3.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry
from registry.query import Position, query_fingerprint
from tasks.client import RegistryClient

from .bench_celery import (
    RESULT_TIMEOUT,
    Workers,
    open_client,
    percentile,
    postgres_database,
    rabbitmq_vhost,
    redis_database,
    round_trip_ms,
    wait_until_serving,
)
from .workload import DEFAULT_POSTGRES

LIST_GOAL_MS = 5.0
CELERY_GOAL = 1.5
#: Seconds of writes timed with no index build running.
BASELINE_SECONDS = 2.0


class Scale(BaseModel):
    category: int
    price: float
    name: str
    note: str | None = None


class ScaleIndexed(BaseModel):
    category: int = Field(json_schema_extra={"x-index": True})
    price: float = Field(json_schema_extra={"x-index": True})
    name: str
    note: str | None = None


# -- setup ---------------------------------------------------------------------------------


def load_rows(registry: DynamicModelRegistry, count: int) -> float:
    """Fill the table in one statement; returns seconds taken."""
    table = registry.model_info("Scale").records.table.name
    start = time.perf_counter()
    with registry.database.write() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {table} (id, version, created_at, updated_at, created_by, updated_by,"
            " category, price, name, note) "
            "SELECT gen_random_uuid()::text, 1, at, at, 'bench', 'bench', mod(i, 1000),"
            " mod(i::bigint * 7919, 100000) / 100.0, 'item ' || i,"
            " CASE WHEN mod(i, 10) = 0 THEN NULL ELSE 'note' END "
            f"FROM generate_series(1, {int(count)}) AS i,"
            " LATERAL (SELECT timestamptz '2026-01-01' + i * interval '1 millisecond' AS at) t"
        )
    with registry.database.single_statement() as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - start


class Writer:
    """Creates records one after another in its own thread (its own registry, as another
    worker would be), keeping each create's start and end (perf_counter seconds)."""

    def __init__(self, database_url: str) -> None:
        self.registry = DynamicModelRegistry(database_url)
        self.spans: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            start = time.perf_counter()
            self.registry.create(
                "Scale", {"category": index % 1000, "price": 1.5, "name": f"new {index}"},
                user_id="writer", user_role="admin",
            )
            self.spans.append((start, time.perf_counter()))
            index += 1

    def during(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the creates that overlapped [start, end)."""
        return [(e - s) * 1000 for s, e in self.spans if s < end and e > start]

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.registry.close()


def time_builds(registry: DynamicModelRegistry, database_url: str) -> dict[str, Any]:
    table = registry.model_info("Scale").records.table.name
    phases: dict[str, tuple[float, float]] = {}
    with Writer(database_url) as writer:
        start = time.perf_counter()
        time.sleep(BASELINE_SECONDS)
        phases["no build (baseline)"] = (start, time.perf_counter())
        start = time.perf_counter()
        with registry.database.write() as conn:
            conn.exec_driver_sql(f"CREATE INDEX bench_plain_name ON {table} (name)")
        phases["plain CREATE INDEX (name)"] = (start, time.perf_counter())
        with registry.database.write() as conn:
            conn.exec_driver_sql("DROP INDEX bench_plain_name")
        time.sleep(0.5)
        start = time.perf_counter()
        registry.register_model("Scale", ScaleIndexed)
        phases["x-index build, CONCURRENTLY (category, price)"] = (start, time.perf_counter())
        time.sleep(0.2)
    with registry.database.single_statement() as conn:
        conn.exec_driver_sql(f"ANALYZE {table}")
    return {
        "latencies": {label: writer.during(*span) for label, span in phases.items()},
        "seconds": {label: end - start for label, (start, end) in phases.items()},
    }


# -- workloads -----------------------------------------------------------------------------


def middle_cursor(registry: DynamicModelRegistry, order_by: str, column: str) -> str:
    """The cursor a walk would hold halfway through the table in this order (made directly,
    rather than by walking 10,000 pages to get it)."""
    entry = registry.model_info("Scale")
    table = entry.records.table
    total = registry.list("Scale", user_role="user", count="exact", page_size=1)["total"]
    descending = order_by.startswith("-")
    order = [table.c[column].desc(), table.c.id.desc()] if descending else [
        table.c[column], table.c.id]
    query = sa.select(table.c[column], table.c.id).order_by(*order).offset(total // 2).limit(1)
    with registry.database.read() as conn:
        value, record_id = conn.execute(query).one()
    position = Position(value.isoformat() if hasattr(value, "isoformat") else value, record_id)
    codec = registry.records.cursors
    return codec.encode(query_fingerprint("Scale", None, order_by), position)


def list_calls(registry: DynamicModelRegistry) -> dict[str, dict[str, Any]]:
    """Each workload's `list` keyword arguments."""
    return {
        "first page": {},
        "middle page, by cursor": {"after": middle_cursor(registry, "created_at", "created_at")},
        "equality filter (category, indexed)": {"filters": {"category": 7}},
        "range filter (price, indexed)": {"filters": {"price": {"gte": 100, "lt": 101}}},
        "order_by price, middle page by cursor": {
            "order_by": "price", "after": middle_cursor(registry, "price", "price"),
        },
        "order_by -price, first page": {"order_by": "-price"},
    }


CONTRAST: dict[str, dict[str, Any]] = {
    "first page, count=exact (contrast)": {"count": "exact"},
    "deepest offset page allowed (contrast)": {"page": 200},
}


WARMUP_CALLS = 5


def timed_ms(call: Callable[[], Any], calls: int) -> list[float]:
    for _ in range(WARMUP_CALLS):
        call()
    found = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        found.append((time.perf_counter() - start) * 1000)
    return found


def in_process(
    registry: DynamicModelRegistry, calls: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Latencies (ms) per workload, and this process's CPU time per call (ms): the part of
    a page that is Python here, which contention from other processes inflates least."""
    workloads: dict[str, Callable[[], Any]] = {
        label: functools.partial(
            registry.list, "Scale", user_role="user", page_size=50, **kwargs
        )
        for label, kwargs in {**list_calls(registry), **CONTRAST}.items()
    }
    record_id = registry.list("Scale", user_role="user", page_size=1)["items"][0]["id"]
    workloads["read by id (contrast)"] = lambda: registry.read(
        "Scale", record_id, user_role="user"
    )
    found: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}
    for label, call in workloads.items():
        start = time.process_time()
        found[label] = timed_ms(call, calls)
        cpu[label] = (time.process_time() - start) * 1000 / (calls + WARMUP_CALLS)
    with registry.database.engine.connect() as conn:
        found["SELECT 1 on a pooled connection (contrast)"] = timed_ms(
            lambda: conn.exec_driver_sql("SELECT 1").scalar(), calls
        )
    return found, cpu


@contextmanager
def celery_client(database_url: str, redis_db: int, logs: Path) -> Iterator[RegistryClient]:
    with ExitStack() as stack:
        broker_url = stack.enter_context(rabbitmq_vhost())
        results_url = stack.enter_context(redis_database(redis_db))
        client, env = open_client(stack, database_url, broker_url, results_url)
        workers = Workers("1x2", env, logs)
        stack.callback(workers.stop)
        workers.start()
        wait_until_serving(client, workers)
        yield client


def through_celery(
    client: RegistryClient, workloads: dict[str, dict[str, Any]], calls: int, record_id: str
) -> tuple[list[float], dict[str, list[float]]]:
    def noop() -> Any:
        return client.app.send_task("bench.noop", queue="crud")

    def listing(kwargs: dict[str, Any]) -> Callable[[], Any]:
        return lambda: client.list("Scale", "bench", "user", **{"page_size": 50, **kwargs})

    sends = {label: listing(kwargs) for label, kwargs in workloads.items()}
    # Contrasts that take the list apart: its result's size, and one database trip alone.
    sends["first page, page_size 1 (contrast)"] = listing({"page_size": 1})
    sends["read by id (contrast)"] = lambda: client.read("Scale", record_id, "bench", "user")
    for send in sends.values():  # every pool child has run every path
        for _ in range(4):
            send().get(timeout=RESULT_TIMEOUT)
    noop_ms: list[float] = []
    found: dict[str, list[float]] = {label: [] for label in sends}
    for _ in range(calls):  # interleaved with the no-op, so drift hits both alike
        for label, send in sends.items():
            noop_ms.append(round_trip_ms(noop))
            found[label].append(round_trip_ms(send))
    return noop_ms, found


# -- report --------------------------------------------------------------------------------


def report_builds(builds: dict[str, Any]) -> None:
    print("\nCreate latency while indexes build (writer thread, one create at a time; a create "
          "counts in every phase it overlaps):")
    print(f"{'phase':48} {'seconds':>7} {'creates':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}")
    for phase, values in builds["latencies"].items():
        seconds = builds["seconds"][phase]
        if not values:
            print(f"{phase:48} {seconds:7.1f} {0:8d}")
            continue
        print(f"{phase:48} {seconds:7.1f} {len(values):8d} {statistics.median(values):8.2f} "
              f"{percentile(values, 0.99):8.2f} {max(values):9.1f}")


def report_lists(
    title: str,
    figures: dict[str, list[float]],
    goal: Callable[[float], str],
    ratio: Callable[[float], str] | None = None,
    cpu: dict[str, float] | None = None,
) -> None:
    """One line per workload; a contrast shows its `ratio` (if any) but no goal."""
    print(f"\n{title}")
    cpu_header = f" {'cpu ms':>7}" if cpu is not None else ""
    print(f"{'workload':42} {'p50 ms':>8} {'p95 ms':>8}{cpu_header}  goal")
    for label, values in figures.items():
        p50 = statistics.median(values)
        if "contrast" in label:
            verdict = ratio(p50) if ratio is not None else ""
        else:
            verdict = goal(p50)
        cpu_cell = "" if cpu is None else (
            f" {cpu[label]:7.2f}" if label in cpu else f" {'':7}"
        )
        print(f"{label:42} {p50:8.2f} {percentile(values, 0.95):8.2f}{cpu_cell}  {verdict}")


def report_in_process(registry: DynamicModelRegistry, calls: int) -> None:
    local, cpu = in_process(registry, calls)
    report_lists(
        f"In-process list, {calls} calls each, page_size 50, role 'user' (cpu: "
        "this process's CPU time per call):", local,
        lambda p50: "ok" if p50 <= LIST_GOAL_MS else f"ABOVE {LIST_GOAL_MS} ms",
        cpu=cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per workload")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL")
    parser.add_argument("--redis-db", type=int, default=13,
                        help="Redis database for results (it must be empty)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-celery", action="store_true", help="in-process figures only")
    only.add_argument("--celery-only", action="store_true",
                      help="through-Celery figures only (no timed index builds)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with postgres_database(args.postgres) as database_url, \
            tempfile.TemporaryDirectory(prefix="bench-scale-") as logs:
        registry = DynamicModelRegistry(database_url)
        try:
            registry.register_model("Scale", ScaleIndexed if args.celery_only else Scale)
            seconds = load_rows(registry, args.rows)
            print(f"Loaded {args.rows:,} rows with INSERT ... SELECT generate_series and "
                  f"VACUUM ANALYZE in {seconds:.1f} s.")
            if not args.celery_only:
                report_builds(time_builds(registry, database_url))
                report_in_process(registry, args.calls)
            if not args.no_celery:
                workloads = list_calls(registry)
                record_id = registry.list("Scale", user_role="user", page_size=1)["items"][0]["id"]
                with celery_client(database_url, args.redis_db, Path(logs)) as client:
                    noop_ms, remote = through_celery(client, workloads, args.calls, record_id)
                noop_p50 = statistics.median(noop_ms)
                report_lists(
                    f"Through Celery (RabbitMQ, Redis results, one worker -c 2): no-op task "
                    f"p50 {noop_p50:.2f} ms, p95 {percentile(noop_ms, 0.95):.2f} ms; ratio "
                    "is list p50 / no-op p50:",
                    remote,
                    lambda p50: f"{p50 / noop_p50:.2f} "
                    + ("ok" if p50 / noop_p50 <= CELERY_GOAL else f"ABOVE {CELERY_GOAL}"),
                    ratio=lambda p50: f"{p50 / noop_p50:.2f}",
                )
        finally:
            registry.close()
    print(f"\nLoad average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
