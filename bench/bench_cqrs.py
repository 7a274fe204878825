"""CQRS on PostgreSQL: commands against a raw insert, writers in parallel, the projector's
catch-up and rebuild, and projection lag under a steady command rate.

    python -m bench.bench_cqrs [--rows 2000] [--events 20000] [--postgres URL]
                               [--only commands|writers|projector|lag]

Figures (each compared, in the same run, with its baseline or goal):
  create command / raw insert-and-commit of the same row     goal >= 0.60
  4 writer processes / 1 writer process (create commands)     goal >= 2.5
      (the same ratio for the raw insert-and-commit is printed beside it: what the
      machine's cores and disk allow at that moment)
  projector catch-up, default + one declared projection,
      over events appended beforehand (half creates, half group moves)
                                                              goal >= 20,000 events/s
  rebuild of the declared projection                          goal >= 20,000 events/s
  lag from command commit to visible in a query, p95,
      at a steady 200 commands/s                              goal <= 250 ms
`cqrs.execute_command` through Celery is measured by `bench.bench_cqrs_celery`.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from registry import DynamicModelRegistry, Settings
from registry.cqrs.events import Event
from registry.cqrs.projections import default_projection_name

from .bench_create import run_raw, with_postgres_database
from .workload import DEFAULT_POSTGRES, RAW_TABLE, Product, rows

SALES = {"name": "by_activity", "model": "Product", "group_by": ["is_active"],
         "measures": {"products": ["count"], "total": ["sum", "price"],
                      "top": ["max", "price"], "mean": ["avg", "price"]}}


def open_registry(url: str, **cqrs: Any) -> DynamicModelRegistry:
    return DynamicModelRegistry(url, settings=Settings().with_overrides(cqrs=cqrs))


def run_commands(registry: DynamicModelRegistry, data: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for row in data:
        registry.execute_command({"type": "create", "model": "Product", "data": row},
                                 "bench", "admin")
    return len(data) / (time.perf_counter() - start)


def command_vs_raw(url: str, count: int, rounds: int = 3) -> dict[str, float]:
    registry = open_registry(url)
    registry.register_model("Product", Product, "cqrs")
    RAW_TABLE.create(registry.database.engine, checkfirst=True)
    data = rows(count)
    run_raw(registry.database.engine, RAW_TABLE, data[:100])
    run_commands(registry, data[:100])
    raw_rates, command_rates = [], []
    for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
        raw_rates.append(run_raw(registry.database.engine, RAW_TABLE, data))
        command_rates.append(run_commands(registry, data))
    registry.close()
    raw, command = statistics.median(raw_rates), statistics.median(command_rates)
    return {"raw": raw, "command": command, "ratio": command / raw}


def _writer(url: str, count: int, raw: bool, ready: Any, start: Any, done: Any) -> None:
    registry = open_registry(url)
    data = rows(count)
    engine = registry.database.engine

    def write(part: list[dict[str, Any]]) -> None:
        if raw:
            run_raw(engine, RAW_TABLE, part)
        else:
            run_commands(registry, part)

    write(data[:20])
    ready.put(True)
    start.wait()
    begin = time.perf_counter()
    write(data)
    done.put((begin, time.perf_counter()))
    registry.close()


def writers_rate(url: str, writers: int, count: int, *, raw: bool = False) -> float:
    """Create commands (or, with `raw`, raw inserts-and-commits) per second of `writers`
    processes together, each with its own registry."""
    context = multiprocessing.get_context("spawn")
    ready, start, done = context.Queue(), context.Event(), context.Queue()
    processes = [context.Process(target=_writer, args=(url, count, raw, ready, start, done))
                 for _ in range(writers)]
    for process in processes:
        process.start()
    # Start together only once every process has opened its registry and warmed up (on a
    # busy machine starting a process can take longer than any fixed pause).
    for _ in processes:
        ready.get(timeout=600)
    time.sleep(0.5)
    start.set()
    spans: list[tuple[float, float]] = [done.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return writers * count / (max(end for _, end in spans) - min(begin for begin, _ in spans))


def parallel_writers(url: str, count: int, rounds: int = 3) -> dict[str, float]:
    """4 writers against 1, for commands and, as what the machine itself allows, for the
    raw insert-and-commit of the same rows."""
    registry = open_registry(url)
    registry.register_model("Product", Product, "cqrs")
    RAW_TABLE.create(registry.database.engine, checkfirst=True)
    registry.close()
    rates: dict[tuple[bool, int], list[float]] = {}
    for _ in range(rounds):  # interleaved, so drift on the machine hits all alike
        for raw in (False, True):
            for writers in (1, 4):
                rates.setdefault((raw, writers), []).append(
                    writers_rate(url, writers, count, raw=raw))
    one, four = (statistics.median(rates[False, n]) for n in (1, 4))
    raw_one, raw_four = (statistics.median(rates[True, n]) for n in (1, 4))
    return {"one": one, "four": four, "ratio": four / one, "raw_ratio": raw_four / raw_one}


def append_history(registry: DynamicModelRegistry, events: int) -> None:
    """`events` events as commands write them (half creates, half updates that move records
    between groups), appended through the store in large transactions: the projector is
    what is measured here, not the commands."""
    entry = registry.model_info("Product")
    records = entry.records
    now = datetime.datetime.now(datetime.UTC)
    data = rows(events // 2)
    batch: list[Event] = []
    for n, row in enumerate(data):
        aggregate_id = str(uuid.uuid4())
        state = records.to_record({"id": aggregate_id, "version": 1, "created_at": now,
                                   "updated_at": now, "created_by": "bench",
                                   "updated_by": "bench", **row})
        changes = {name: {"old": None, "new": state[name]} for name in records.field_names}
        batch.append(_event(aggregate_id, 1, "created", changes, state, now))
        moved = {**state, "version": 2, "is_active": n % 3 == 0, "price": 2.0 + n}
        changes = {name: {"old": state[name], "new": moved[name]}
                   for name in ("is_active", "price") if state[name] != moved[name]}
        batch.append(_event(aggregate_id, 2, "updated", changes, moved, now))
        if len(batch) >= 2000:
            _flush(registry, batch)
    _flush(registry, batch)


def _event(aggregate_id: str, version: int, type_: str, changes: dict[str, Any],
           state: dict[str, Any], now: datetime.datetime) -> Event:
    return Event(model="Product", aggregate_id=aggregate_id, version=version, type=type_,
                 data={"changes": changes, "state": state}, schema_version=1, timestamp=now)


def _flush(registry: DynamicModelRegistry, batch: list[Event]) -> None:
    with registry.database.write() as conn:
        registry.cqrs.store.append(conn, batch)
    batch.clear()


def catch_up_and_rebuild(url: str, events: int) -> dict[str, float]:
    registry = open_registry(url, projector_batch_size=5000)
    registry.register_model("Product", Product, "cqrs")
    append_history(registry, events)
    registry.define_projection(SALES)
    start = time.perf_counter()
    applied = registry.project()["events"]
    catch_up = time.perf_counter() - start
    start = time.perf_counter()
    rebuilt = registry.rebuild_projection("by_activity")["events"]
    rebuild = time.perf_counter() - start
    start = time.perf_counter()
    registry.rebuild_projection(default_projection_name("Product"))
    rebuild_default = time.perf_counter() - start
    registry.close()
    return {"events": events, "applied": applied, "catch_up": events / catch_up,
            "rebuild": rebuilt / rebuild, "rebuild_default": events / rebuild_default}


def _project_forever(url: str, stop: Any) -> None:
    registry = open_registry(url)
    while not stop.is_set():
        if registry.project()["events"] == 0:
            time.sleep(0.005)
    registry.close()


def projection_lag(url: str, rate: float, seconds: float) -> dict[str, float]:
    """Commands at a steady `rate` in this process, the projector looping in another; the lag
    is from a command's return (its commit) to its position passing the checkpoints of the
    default and the declared projection."""
    registry = open_registry(url)
    registry.register_model("Product", Product, "cqrs")
    registry.define_projection(SALES)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    projector = context.Process(target=_project_forever, args=(url, stop))
    projector.start()
    time.sleep(3)
    sent: list[tuple[int, float]] = []
    seen: dict[int, float] = {}
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set() or len(seen) < len(sent):
            status = registry.projection_status()
            reached = min(status.get(name, {}).get("checkpoint", 0)
                          for name in (default_projection_name("Product"), "by_activity"))
            now = time.perf_counter()
            for position, _ in sent[len(seen):]:
                if position > reached:
                    break
                seen[position] = now
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    data = rows(int(rate * seconds))
    interval = 1 / rate
    begin = time.perf_counter()
    for n, row in enumerate(data):
        delay = begin + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        result = registry.execute_command({"type": "create", "model": "Product", "data": row},
                                          "bench", "admin")
        sent.append((result["position"], time.perf_counter()))
    achieved = len(data) / (time.perf_counter() - begin)
    finished.set()
    watcher.join(timeout=60)
    stop.set()
    projector.join()
    registry.close()
    lags = sorted((seen[position] - at) * 1000 for position, at in sent if position in seen)
    return {"rate": achieved, "p50": lags[len(lags) // 2],
            "p95": lags[int(len(lags) * 0.95)], "max": lags[-1]}


def fresh(admin_url: str, body: Callable[[str], dict[str, float]]) -> dict[str, float]:
    return with_postgres_database(admin_url, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (may be given more than once)")
    args = parser.parse_args()
    for part in args.only or PARTS:
        PARTS[part](args)


def print_commands(args: argparse.Namespace) -> None:
    single = fresh(args.postgres, lambda url: command_vs_raw(url, args.rows))
    print(f"create command  {single['command']:8.0f}/s   raw insert {single['raw']:8.0f}/s"
          f"   ratio {single['ratio']:.2f}   goal >= 0.60  "
          f"{'ok' if single['ratio'] >= 0.6 else 'BELOW GOAL'}")


def print_writers(args: argparse.Namespace) -> None:
    writers = fresh(args.postgres, lambda url: parallel_writers(url, args.rows // 2))
    print(f"4 writers       {writers['four']:8.0f}/s   1 writer   {writers['one']:8.0f}/s"
          f"   ratio {writers['ratio']:.2f}   goal >= 2.5   "
          f"{'ok' if writers['ratio'] >= 2.5 else 'BELOW GOAL'}")
    print(f"  (4 writers / 1 of the raw insert-and-commit, same run: {writers['raw_ratio']:.2f})")


def print_projector(args: argparse.Namespace) -> None:
    projector = fresh(args.postgres, lambda url: catch_up_and_rebuild(url, args.events))
    for label, key in (("catch-up", "catch_up"), ("rebuild", "rebuild")):
        print(f"{label:<16}{projector[key]:8.0f} events/s ({projector['events']:.0f} events)"
              f"   goal >= 20000  {'ok' if projector[key] >= 20000 else 'BELOW GOAL'}")
    print(f"rebuild default {projector['rebuild_default']:8.0f} events/s (the record table)")


def print_lag(args: argparse.Namespace) -> None:
    lag = fresh(args.postgres, lambda url: projection_lag(url, 200.0, args.lag_seconds))
    print(f"projection lag  p50 {lag['p50']:.0f} ms  p95 {lag['p95']:.0f} ms  max "
          f"{lag['max']:.0f} ms at {lag['rate']:.0f} commands/s   goal p95 <= 250 ms  "
          f"{'ok' if lag['p95'] <= 250 else 'BELOW GOAL'}")


#: The benchmark's parts in the order a full run prints them (`--only` picks some).
PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "commands": print_commands, "writers": print_writers, "projector": print_projector,
    "lag": print_lag,
}


if __name__ == "__main__":
    main()
