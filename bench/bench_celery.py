"""Celery round trips and throughput on RabbitMQ and Redis, against bare-task baselines.

Workloads, all on queue `crud`, run by the same worker processes with the project's Celery
configuration (see `bench.celery_tasks`):

    (a) bench.noop         a bare no-op task
    (b) bench.raw_insert   a bare task: Pydantic validation, one SQLAlchemy Core insert, commit
    (c) records.create     the project's create, sent through `RegistryClient` (idempotency key)
    read                   the project's records.read, through `RegistryClient`

Throughput: send N tasks, then wait for every result; tasks/s over the whole span, the median
of interleaved rounds. Latency: one call at a time, `.get()` each, (a) and read alternating.
Goals: (c) / (b) >= 0.80 and read p50 / (a) p50 <= 1.5.

Each run makes a fresh PostgreSQL database, a fresh RabbitMQ virtual host and flushes its own
Redis databases (broker and results), starts and stops its own workers, and removes all of it
afterwards.

    python -m bench.bench_celery [--tasks 2000] [--broker rabbitmq|redis|both]
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from celery.exceptions import TimeoutError as ResultTimeout

from registry.settings import Settings
from tasks.client import RegistryClient

from .cpu_usage import GROUPS, CpuMeter
from .workload import DEFAULT_POSTGRES, RAW_TABLE, Product, rows

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CREATE_GOAL = 0.80
READ_GOAL = 1.5
REFERENCE = {"rabbitmq": 1000, "redis": 700}
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/{vhost}"
REDIS_URL = "redis://127.0.0.1:6379/{db}"
#: Seconds a worker may take to answer its first task.
START_TIMEOUT = 60.0
#: Seconds to wait for any one result.
RESULT_TIMEOUT = 120.0
LAYOUTS = {
    "1x2": "one worker, prefork -c 2 (a parent consumer and two pool children)",
    "2x1": "two workers, prefork -c 1 each (two consumers, one pool child each)",
}


@dataclass(frozen=True)
class Figures:
    broker: str
    noop: list[float]
    raw: list[float]
    create: list[float]
    noop_ms: list[float]
    read_ms: list[float]
    #: workload -> group -> CPU milliseconds per task (see `bench.cpu_usage`)
    cpu: dict[str, dict[str, float]]

    @property
    def create_ratio(self) -> float:
        return statistics.median(self.create) / statistics.median(self.raw)

    @property
    def read_ratio(self) -> float:
        return statistics.median(self.read_ms) / statistics.median(self.noop_ms)


# -- services ---------------------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database for this run; dropped afterwards."""
    name = f"dmr_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of this run's own, deleted with its queues afterwards."""
    vhost = f"dmr_bench_{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield RABBITMQ_URL.format(vhost=vhost)
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@contextmanager
def redis_database(index: int) -> Iterator[str]:
    """A Redis database that must be empty at the start; flushed afterwards."""
    url = REDIS_URL.format(db=index)
    connection = redis.Redis.from_url(url)
    if connection.dbsize():
        connection.close()
        sys.exit(f"Redis database {index} is not empty; pick another with --redis-db.")
    try:
        yield url
    finally:
        connection.flushdb()
        connection.close()


def open_client(
    stack: ExitStack, database_url: str, broker_url: str, results_url: str
) -> tuple[RegistryClient, dict[str, str]]:
    """A producer for one run's services, closed with `stack`, and the `DMR_*` environment
    that points workers at the same services."""
    env = {
        "DMR_SETTINGS": str(PROJECT_ROOT / "settings.toml"),
        "DMR_DATABASE_URL": database_url,
        "DMR_BROKER_URL": broker_url,
        "DMR_RESULT_BACKEND": results_url,
    }
    client = RegistryClient.from_settings(Settings.load(environ=env))
    stack.callback(client.close)
    return client, env


# -- workers ----------------------------------------------------------------------------


class Workers:
    """The worker processes of one run, each in its own process group.

    `layout` is "<workers>x<pool children each>" (LAYOUTS names the two the Celery benchmark
    compares); `queues`, `app_module` and `name` (node names are name1@host, name2@host, ...)
    let another benchmark start its own workers the same way.
    """

    def __init__(
        self,
        layout: str,
        env: dict[str, str],
        logs: Path,
        *,
        queues: str = "registry,crud",
        app_module: str = "bench.celery_tasks",
        name: str = "bench",
        options: tuple[str, ...] = (),
    ) -> None:
        self.layout = layout
        self.env = env
        self.logs = logs
        self.queues = queues
        #: The app the workers run; by default the project's, plus the two bench tasks.
        self.app_module = app_module
        self.name = name
        #: More worker command-line options (e.g. a prefetch multiplier), after the others.
        self.options = options
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        count, concurrency = (int(part) for part in self.layout.split("x"))
        host = socket.gethostname()
        for index in range(1, count + 1):
            command = [
                sys.executable, "-m", "celery", "-A", self.app_module, "worker",
                "-Q", self.queues, "-P", "prefork", "-c", str(concurrency),
                "-n", f"{self.name}{index}@{host}", "-l", "warning",
                "--without-gossip", "--without-mingle", *self.options,
            ]
            with (self.logs / f"worker{index}.log").open("ab") as log:
                self.processes.append(subprocess.Popen(
                    command, cwd=PROJECT_ROOT, env={**os.environ, **self.env},
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))

    def process_groups(self) -> set[int]:
        return {process.pid for process in self.processes}

    def check_alive(self) -> None:
        for index, process in enumerate(self.processes, start=1):
            if process.poll() is not None:
                log = (self.logs / f"worker{index}.log").read_text(errors="replace")
                raise RuntimeError(f"Worker {index} exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # warm shutdown, pool children too
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def wait_until_serving(client: RegistryClient, workers: Workers) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    result = client.app.send_task("bench.noop", queue="crud")
    while time.monotonic() < deadline:
        workers.check_alive()
        try:
            result.get(timeout=1.0)
            return
        except ResultTimeout:
            continue
    raise RuntimeError(f"The workers did not answer within {START_TIMEOUT:.0f} s.")


# -- measurements -----------------------------------------------------------------------


def throughput(send: Callable[[dict[str, Any]], Any], payloads: list[dict[str, Any]]) -> float:
    """Tasks per second from the first send to the last result."""
    start = time.perf_counter()
    handles = [send(payload) for payload in payloads]
    for handle in handles:
        handle.get(timeout=RESULT_TIMEOUT)
    return len(payloads) / (time.perf_counter() - start)


def round_trip_ms(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call().get(timeout=RESULT_TIMEOUT)
    return (time.perf_counter() - start) * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(
    broker: str, client: RegistryClient, meter: CpuMeter, tasks: int, rounds: int, calls: int
) -> Figures:
    def noop(_: dict[str, Any] | None = None) -> Any:
        return client.app.send_task("bench.noop", queue="crud")

    def raw(row: dict[str, Any]) -> Any:
        return client.app.send_task("bench.raw_insert", kwargs=row, queue="crud")

    def create(row: dict[str, Any]) -> Any:
        return client.create("Product", row, user_id="bench", user_role="admin")

    client.register_model("Product", Product, user_id="bench", user_role="admin").get(
        timeout=RESULT_TIMEOUT)
    data = rows(tasks)
    warm = data[:100]
    for send in (noop, raw, create):  # every pool child has run every path before timing
        throughput(send, warm)
    record_ids = [create(row).get(timeout=RESULT_TIMEOUT)["id"] for row in warm[:50]]
    figures = Figures(broker, [], [], [], [], [], {})
    workloads = (("noop", noop, figures.noop), ("raw", raw, figures.raw),
                 ("create", create, figures.create))
    for _ in range(rounds):  # interleaved, so drift on the machine hits every workload alike
        for label, send, rates in workloads:
            with meter.measure(label, len(data)):
                rates.append(throughput(send, data))
    figures.cpu.update({label: meter.per_task(label) for label, _, _ in workloads})
    for i in range(calls):
        figures.noop_ms.append(round_trip_ms(noop))
        record_id = record_ids[i % len(record_ids)]
        figures.read_ms.append(
            round_trip_ms(functools.partial(client.read, "Product", record_id, "bench", "user"))
        )
    return figures


def run_broker(broker: str, database_url: str, args: argparse.Namespace, logs: Path) -> Figures:
    with ExitStack() as stack:
        if broker == "rabbitmq":
            broker_url = stack.enter_context(rabbitmq_vhost())
        else:
            broker_url = stack.enter_context(redis_database(args.redis_db))
        results_url = stack.enter_context(redis_database(args.redis_db + 1))
        client, env = open_client(stack, database_url, broker_url, results_url)
        broker_logs = logs / broker
        broker_logs.mkdir()
        workers = Workers(args.layout, env, broker_logs)
        stack.callback(workers.stop)
        workers.start()
        wait_until_serving(client, workers)
        meter = CpuMeter(
            workers.process_groups, sa.make_url(database_url).database or "",
            "beam.smp" if broker == "rabbitmq" else "redis-server",
        )
        figures = measure(broker, client, meter, args.tasks, args.rounds, args.calls)
    return figures


def create_raw_table(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    RAW_TABLE.create(engine)
    engine.dispose()


# -- report -----------------------------------------------------------------------------


def report(results: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"\nCelery round trips and throughput: {args.tasks} tasks per workload, median of "
        f"{args.rounds} interleaved rounds; {args.calls} sequential round trips each."
    )
    print(f"Workers: {LAYOUTS[args.layout]}, queues registry,crud, on the same "
          f"{os.cpu_count()} cores as the broker, PostgreSQL, Redis and this producer.\n")
    print(f"{'broker':<10}{'(a) noop/s':>11}{'(b) raw/s':>11}{'(c) create/s':>13}"
          f"{'c/b':>6}{'(a) p50/p95 ms':>17}{'read p50/p95 ms':>17}{'read/a':>8}")
    for r in results:
        print(
            f"{r.broker:<10}{statistics.median(r.noop):>11.0f}{statistics.median(r.raw):>11.0f}"
            f"{statistics.median(r.create):>13.0f}{r.create_ratio:>6.2f}"
            f"{_p50_p95(r.noop_ms):>17}{_p50_p95(r.read_ms):>17}{r.read_ratio:>8.2f}"
        )
    print("\nGoals: c/b >= 0.80 and read/a <= 1.5 (p50).")
    for r in results:
        print(
            f"  {r.broker:<9} c/b {r.create_ratio:.2f} "
            f"{'ok' if r.create_ratio >= CREATE_GOAL else 'BELOW GOAL'}; "
            f"read/a {r.read_ratio:.2f} {'ok' if r.read_ratio <= READ_GOAL else 'ABOVE GOAL'}; "
            f"(b) {statistics.median(r.raw):.0f}/s against the issue's reference of about "
            f"{REFERENCE[r.broker]:,}/s on this machine"
        )
    print("\nCPU milliseconds per task while the throughput rounds ran (broker: for Redis, "
          "broker and results are one process, counted there):")
    print(f"  {'':<9}{'':<8}" + "".join(f"{group:>10}" for group in GROUPS) + f"{'wall':>10}")
    for r in results:
        for label, rates in (("noop", r.noop), ("raw", r.raw), ("create", r.create)):
            cpu = r.cpu[label]
            wall = 1000 / statistics.median(rates)
            print(f"  {r.broker:<9}{label:<8}" + "".join(f"{cpu[g]:>10.2f}" for g in GROUPS)
                  + f"{wall:>10.2f}")
    print("\nRounds (tasks/s):")
    for r in results:
        for label, values in (("noop", r.noop), ("raw", r.raw), ("create", r.create)):
            print(f"  {r.broker:<9}{label:<8}" + " ".join(f"{v:>7.0f}" for v in values))


def _p50_p95(values: list[float]) -> str:
    return f"{percentile(values, 0.50):.2f}/{percentile(values, 0.95):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per workload and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300, help="sequential round trips")
    parser.add_argument("--broker", choices=["rabbitmq", "redis", "both"], default="both")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="1x2")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL")
    parser.add_argument("--redis-db", type=int, default=12,
                        help="Redis database for the broker; results use the next one")
    args = parser.parse_args()
    brokers = ["rabbitmq", "redis"] if args.broker == "both" else [args.broker]
    load_before = os.getloadavg()[0]
    results = []
    with postgres_database(args.postgres) as database_url, \
            tempfile.TemporaryDirectory(prefix="bench-celery-") as folder:
        create_raw_table(database_url)
        for broker in brokers:
            results.append(run_broker(broker, database_url, args, Path(folder)))
    report(results, args)
    print(f"\nLoad average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}: "
          "other work on the machine lowers every figure.")


if __name__ == "__main__":
    main()
