"""Batch import through Celery workers against a raw COPY of the same file, in one run.

A generated CSV (default 1,000,000 rows; 9 typed columns: text, integer, decimal, date, email,
enum, boolean, and two nullable ones; one row in 1,000 invalid) is:

    raw        COPYed by PostgreSQL straight from the file (FORMAT csv), no Python, no
               validation, no audit, into two tables: a bare one of the file's columns (how
               fast PostgreSQL parses and stores the rows), and one of the record table's
               shape (`LIKE` the model's record table, indexes and all; the system columns
               filled by column defaults: a random id, now(), version 1), which is what any
               import into the registry must write. The goal's ratio is judged against the
               second (DESIGN.md, "Imports", says why); both ratios are printed;
    import     imported by `RegistryClient.import_records` through worker processes: the
               producer reads and sends chunks on queue `imports`, workers validate each chunk
               with the model, write it with COPY plus its audit entry and completion mark;
               timed from `imports.start` to the job's `finished` status.

Goals: import >= 100,000 rows/s and >= 0.6 of the record-shaped raw COPY; peak memory (VmHWM)
of the producer and of every worker process <= 300 MB. Then `records.create_many` of 1,000
items against single `records.create` calls (sent all at once, then every result awaited),
both through the same workers: goal >= 20x. With `--sqlite-rows`, the import also runs on
SQLite (a database file the workers share), against a raw `executemany` of the same rows into a
same-shaped table.

Each run makes its own PostgreSQL database, RabbitMQ virtual host and Redis result database,
starts and stops its own workers, and removes all of it afterwards.

    python -m bench.bench_import [--rows 1000000] [--workers 2] [--concurrency 1]
                                 [--prefetch 1] [--chunk-size 5000] [--sqlite-rows 200000]

The default worker shape is the one DESIGN.md ("Imports", "Import workers: one per core")
kept after measuring the others: two workers, one pool child each, prefetch multiplier 1.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import decimal
import enum
import os
import random
import resource
import sqlite3
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel, EmailStr, Field

from registry.names import table_name_for
from tasks.client import RegistryClient

from .bench_celery import (
    Workers,
    open_client,
    postgres_database,
    rabbitmq_vhost,
    redis_database,
)
from .workload import DEFAULT_POSTGRES

RATE_GOAL = 100_000
RATIO_GOAL = 0.6
MEMORY_GOAL_MB = 300
MANY_GOAL = 20
COLUMNS = ["customer", "quantity", "amount", "ordered_on", "email", "status", "paid", "note",
           "weight"]


class Status(enum.StrEnum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Order(BaseModel):
    customer: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=0)
    amount: decimal.Decimal = Field(max_digits=12, decimal_places=2)
    ordered_on: datetime.date
    email: EmailStr
    status: Status
    paid: bool
    note: str | None = None
    weight: float | None = None


RAW_DDL = """CREATE TABLE {name} (customer text, quantity bigint, amount numeric(12, 2),
ordered_on date, email text, status text, paid boolean, note text, weight double precision)"""
#: A table of the record table's shape: its columns, types, collations, key and indexes, copied
#: from the table the registry built; the system columns get defaults, since the file has none.
SHAPED_DDL = """CREATE TABLE {name} (LIKE {record_table} INCLUDING ALL);
ALTER TABLE {name} ALTER id SET DEFAULT gen_random_uuid()::text,
  ALTER version SET DEFAULT 1, ALTER created_at SET DEFAULT now(),
  ALTER updated_at SET DEFAULT now(), ALTER created_by SET DEFAULT 'bench',
  ALTER updated_by SET DEFAULT 'bench'"""
#: The same shape with ids that ascend (a sequence, zero-padded to an id's width), as an import's
#: do: each new key lands at the right edge of the B-tree instead of at a random page of it.
SHAPED_ORDERED_DDL = SHAPED_DDL + """;
CREATE SEQUENCE {name}_ids;
ALTER TABLE {name} ALTER id SET DEFAULT lpad(nextval('{name}_ids')::text, 36, '0')"""


def generate(path: Path, rows: int) -> int:
    """Write the CSV; returns how many rows are invalid (a bad email every 1,000th row)."""
    rnd = random.Random(7)
    statuses = [s.value for s in Status]
    bad = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            email = f"customer{i}@example.com"
            if i % 1000 == 999:
                email, bad = "not an email", bad + 1
            writer.writerow([
                f"Customer {i:07d}", i % 500, f"{rnd.randint(1, 99999)}.{rnd.randint(0, 99):02d}",
                f"20{10 + i % 14}-{1 + i % 12:02d}-{1 + i % 28:02d}", email, statuses[i % 4],
                "true" if i % 2 else "false", "" if i % 3 else f"note {i % 97}",
                "" if i % 5 == 0 else f"{i % 1000}.{i % 10}",
            ])
    return bad


# -- PostgreSQL ---------------------------------------------------------------------------


class RawCopy(NamedTuple):
    rate: float  # rows/s
    database_us: float  # CPU of the backend that ran the COPY, microseconds a row


def raw_copy(database_url: str, path: Path, ddl: str, table: str) -> RawCopy:
    """COPY ... FROM STDIN (FORMAT csv) of the whole file into `table`, made first by `ddl`."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(ddl)
        started = time.perf_counter()
        with engine.begin() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            backend_before = process_cpu_seconds(backend)
            raw = conn.connection.driver_connection
            assert raw is not None  # a connection checked out of the pool is open
            with raw.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy, path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    copy.write(block)
        elapsed = time.perf_counter() - started
        backend_seconds = process_cpu_seconds(backend) - backend_before
        with engine.connect() as conn:
            rows = int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
        return RawCopy(rows / elapsed, backend_seconds / rows * 1e6)
    finally:
        engine.dispose()


def raw_copy_bare(database_url: str, path: Path) -> RawCopy:
    return raw_copy(database_url, path, RAW_DDL.format(name="bench_raw_orders"),
                    "bench_raw_orders")


def raw_copy_shaped(database_url: str, path: Path, model: str) -> RawCopy:
    """Raw COPY into a table shaped like `model`'s record table (which must exist)."""
    ddl = SHAPED_DDL.format(name="bench_shaped_orders", record_table=table_name_for(model))
    return raw_copy(database_url, path, ddl, "bench_shaped_orders")


def raw_copy_shaped_ordered(database_url: str, path: Path, model: str) -> RawCopy:
    """Raw COPY into a table shaped like `model`'s record table, its ids ascending."""
    ddl = SHAPED_ORDERED_DDL.format(name="bench_ordered_orders",
                                    record_table=table_name_for(model))
    return raw_copy(database_url, path, ddl, "bench_ordered_orders")


def import_through_workers(
    client: RegistryClient, model: str, path: Path, chunk_size: int
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    status = client.import_records(
        model, path, user_id="bench", user_role="admin", options={"chunk_size": chunk_size},
        timeout=3600,
    )
    return status, time.perf_counter() - started


def many_against_single(client: RegistryClient, model: str, singles: int) -> tuple[float, float]:
    """(rows/s of single creates, rows/s of create_many of 1,000 items)."""
    item = {"customer": "C", "quantity": 1, "amount": "9.99", "ordered_on": "2024-01-02",
            "email": "c@example.com", "status": "new", "paid": True}
    started = time.perf_counter()
    handles = [client.create(model, item, "bench", "admin") for _ in range(singles)]
    for handle in handles:
        handle.get(timeout=600)
    single_rate = singles / (time.perf_counter() - started)
    batches = 5
    started = time.perf_counter()
    for _ in range(batches):
        client.create_many(model, [item] * 1000, "bench", "admin").get(timeout=600)
    many_rate = batches * 1000 / (time.perf_counter() - started)
    return single_rate, many_rate


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, seconds) used so far by a process; 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(groups: set[int], database_url: str) -> dict[str, float]:
    """CPU time (user + system, seconds) used so far by this process (the producer), by the
    worker processes, and by PostgreSQL's backends serving the run's database (which stay
    connected for the run: the workers' pools)."""
    # A worker's main process (the group leader) receives and checks messages; its pool
    # children run the tasks.
    workers = [int(e) for e in os.listdir("/proc") if e.isdigit() and _group_of(int(e)) in groups]
    own = resource.getrusage(resource.RUSAGE_SELF)
    used = process_cpu_seconds
    figures = {"producer": own.ru_utime + own.ru_stime,
               "worker main": sum(used(pid) for pid in workers if pid in groups),
               "worker children": sum(used(pid) for pid in workers if pid not in groups),
               "database": 0.0}
    if database_url.startswith("postgresql"):
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            backends = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()").scalars().all()
        engine.dispose()
        figures["database"] = sum(used(pid) for pid in backends)
    return figures


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (OSError, ProcessLookupError):
        return None


def peak_mb_of_groups(groups: set[int]) -> list[float]:
    """VmHWM (peak resident memory, MB) of every process in the given process groups."""
    peaks = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) not in groups:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def run_backend(
    database_url: str, path: Path, args: argparse.Namespace, logs: Path, *, many: bool
) -> dict[str, Any]:
    with ExitStack() as stack:
        broker_url = stack.enter_context(rabbitmq_vhost())
        results_url = stack.enter_context(redis_database(args.redis_db))
        client, env = open_client(stack, database_url, broker_url, results_url)
        # `--workers` processes serving imports (and registry/crud for the model and creates).
        workers = Workers(f"{args.workers}x{args.concurrency}", env, logs,
                          queues="imports,registry,crud", app_module="workers.app", name="import",
                          options=("--prefetch-multiplier", str(args.prefetch)))
        stack.callback(workers.stop)
        workers.start()
        model = f"Order{os.getpid()}"
        client.register_model(model, Order, user_role="admin").get(timeout=120)
        figures: dict[str, Any] = {}
        if database_url.startswith("postgresql"):
            # Before the import, while the workers are idle, as the bare table's COPY was.
            figures["raw_shaped"] = raw_copy_shaped(database_url, path, model)
            figures["raw_ordered"] = raw_copy_shaped_ordered(database_url, path, model)
        before = cpu_seconds(workers.process_groups(), database_url)
        status, elapsed = import_through_workers(client, model, path, args.chunk_size)
        after = cpu_seconds(workers.process_groups(), database_url)
        rows = status["done"] + status["rejected"]
        figures |= {"status": status, "seconds": elapsed, "rate": rows / elapsed,
                    "worker_mb": peak_mb_of_groups(workers.process_groups()),
                    "cpu_us": {part: (after[part] - before[part]) / rows * 1e6
                               for part in after}}
        if many:
            figures["single"], figures["many"] = many_against_single(client, model, args.singles)
        return figures


# -- SQLite -------------------------------------------------------------------------------


def raw_sqlite(path: Path, folder: Path) -> float:
    """Rows/s of Python's csv reader plus one executemany into a same-shaped SQLite table."""
    database = folder / "raw.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute(RAW_DDL.format(name="raw_orders"))
    started = time.perf_counter()
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.executemany(f"INSERT INTO raw_orders VALUES ({', '.join('?' * len(COLUMNS))})",
                         reader)
    conn.commit()
    rows = conn.execute("SELECT count(*) FROM raw_orders").fetchone()[0]
    elapsed = time.perf_counter() - started
    conn.close()
    return int(rows) / elapsed


# -- report -------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW GOAL"


def report_postgres(rows: int, raw: RawCopy, figures: dict[str, Any], producer_mb: float) -> None:
    status = figures["status"]
    rate = figures["rate"]
    print(f"\nPostgreSQL, {rows:,} rows, {len(COLUMNS)} columns "
          f"(state {status['state']}: {status['done']:,} done + {status['rejected']:,} "
          f"rejected = {status['done'] + status['rejected']:,} of {status['total']:,})")
    shaped = figures["raw_shaped"]
    print(f"  raw COPY, bare table          {raw.rate:>10,.0f} rows/s   "
          f"{raw.database_us:.1f} us a row (database); the file's columns only")
    print(f"  raw COPY, record-shaped table {shaped.rate:>10,.0f} rows/s   "
          f"{shaped.database_us:.1f} us a row (database); the record table's key and indexes")
    ordered = figures["raw_ordered"]
    print(f"  raw COPY, same, ids in order  {ordered.rate:>10,.0f} rows/s   "
          f"{ordered.database_us:.1f} us a row (database); ascending ids, as an import's")
    print(f"  import through the workers    {rate:>10,.0f} rows/s   "
          f"{figures['seconds']:.1f} s   goal >= {RATE_GOAL:,}: {verdict(rate >= RATE_GOAL)}")
    print(f"  import / raw, record-shaped   {rate / shaped.rate:>10.2f}          "
          f"goal >= {RATIO_GOAL}: {verdict(rate / shaped.rate >= RATIO_GOAL)}")
    print(f"  import / raw, ids in order    {rate / ordered.rate:>10.2f}          "
          "(printed, not judged)")
    print(f"  import / raw, bare table      {rate / raw.rate:>10.2f}          "
          "(printed, not judged)")
    workers = figures["worker_mb"]
    print(f"  peak memory, producer         {producer_mb:>10.0f} MB      "
          f"goal <= {MEMORY_GOAL_MB}: {verdict(producer_mb <= MEMORY_GOAL_MB)}")
    print(f"  peak memory, worker processes {', '.join(f'{mb:.0f}' for mb in workers)} MB  "
          f"goal <= {MEMORY_GOAL_MB}: {verdict(max(workers) <= MEMORY_GOAL_MB)}")
    print_cpu(figures["cpu_us"])
    single, many = figures["single"], figures["many"]
    print(f"  records.create (single)       {single:>10,.0f} rows/s")
    print(f"  records.create_many (1,000)   {many:>10,.0f} rows/s   x{many / single:.1f}   "
          f"goal >= x{MANY_GOAL}: {verdict(many / single >= MANY_GOAL)}")


def print_cpu(cpu_us: dict[str, float]) -> None:
    """CPU per imported row by part, and the rate two fully used cores would give."""
    total = sum(cpu_us.values())
    parts = ", ".join(f"{part} {value:.1f}" for part, value in cpu_us.items())
    print(f"  CPU per row (us)              {parts}; total {total:.1f}")
    print(f"  ceiling on 2 cores            {2e6 / total:>10,.0f} rows/s (all CPU to this run)")


def report_sqlite(rows: int, raw: float, figures: dict[str, Any]) -> None:
    status = figures["status"]
    print(f"\nSQLite, {rows:,} rows (state {status['state']}: {status['done']:,} done + "
          f"{status['rejected']:,} rejected of {status['total']:,})")
    print(f"  raw csv + executemany         {raw:>10,.0f} rows/s")
    print(f"  import through the workers    {figures['rate']:>10,.0f} rows/s   "
          f"{figures['seconds']:.1f} s   ratio {figures['rate'] / raw:.2f}")
    print_cpu(figures["cpu_us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool children each")
    parser.add_argument("--prefetch", type=int, default=1,
                        help="prefetch multiplier (messages held per pool child)")
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--singles", type=int, default=1000, help="single creates to time")
    parser.add_argument("--sqlite-rows", type=int, default=200_000, help="0 skips SQLite")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis database for results")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as name:
        folder = Path(name)
        path = folder / "orders.csv"
        bad = generate(path, args.rows)
        print(f"Generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB, {bad} invalid).")
        with postgres_database(args.postgres) as database_url:
            raw = raw_copy_bare(database_url, path)
            (folder / "pg").mkdir()
            figures = run_backend(database_url, path, args, folder / "pg", many=True)
        producer_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report_postgres(args.rows, raw, figures, producer_mb)
        if args.sqlite_rows:
            small = folder / "small.csv"
            generate(small, args.sqlite_rows)
            raw_lite = raw_sqlite(small, folder)
            (folder / "lite").mkdir()
            lite = run_backend(f"sqlite:///{folder / 'registry.sqlite3'}", small, args,
                               folder / "lite", many=False)
            report_sqlite(args.sqlite_rows, raw_lite, lite)
    print(f"\nLoad average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}: "
          "other work on the machine lowers every figure.")


if __name__ == "__main__":
    main()
