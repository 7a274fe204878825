"""Round trips on the embedded default: the file broker against the SQLAlchemy transport.

The embedded default moved from kombu's SQLAlchemy transport on SQLite (no fanout: Flower saw
nothing) to the file broker (tasks/file_broker.py). This measures what a producer waits for a
result on each, through the same worker layout the demo uses (one solo worker, queues
registry and crud, SQLite data and results in a temporary folder), and how long `dmr`'s check
for a worker takes on the file broker (the SQLAlchemy transport cannot broadcast at all).

    records.read      RegistryClient.read, one at a time, `.get()` each (as user)
    registry.list_models   the lightest task of the project, one at a time
    worker check      tasks.presence.worker_serving (file broker only)

Goal: records.read median < 100 ms on the embedded default. Baseline: the SQLAlchemy
transport, same run, same worker layout, same polling interval (celery.polling_interval).

    python -m bench.bench_embedded [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from registry.settings import Settings
from tasks.client import RegistryClient
from tasks.presence import worker_serving
from workers.demo import (
    PRICE_PERMISSIONS,
    Product,
    embedded_environment,
    prepare_stores,
    start_worker,
    stop_process,
    wait_until_serving,
)

GOAL_MS = 100.0
BROKERS: dict[str, Callable[[Path], dict[str, str]]] = {
    "file broker (new default)": lambda directory: embedded_environment(directory),
    "SQLAlchemy transport (old default)": lambda directory: {
        **embedded_environment(directory),
        "DMR_BROKER_URL": f"sqla+sqlite:///{directory / 'broker.sqlite3'}",
    },
}


def _timings(calls: int, call: Callable[[], object]) -> list[float]:
    found = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        found.append((time.perf_counter() - started) * 1000)
    return found


def _summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"median {statistics.median(ordered):6.1f} ms   p90 {p90:6.1f} ms"


def measure(name: str, env: dict[str, str], directory: Path, calls: int) -> float:
    settings = Settings.load(environ={**os.environ, **env})
    client = RegistryClient.from_settings(settings)
    prepare_stores(client)
    worker = start_worker(env, directory / "worker.log")
    try:
        wait_until_serving(client, worker, directory / "worker.log")
        client.register_model("Product", Product, permissions=PRICE_PERMISSIONS,
                              user_id="bench", user_role="admin").get()
        record = client.create("Product", {"name": "Lamp", "price": 20.0}, "u", "admin").get()
        _timings(10, lambda: client.read("Product", record["id"], "u", "user").get())  # warm
        reads = _timings(calls, lambda: client.read("Product", record["id"], "u", "user").get())
        models = _timings(calls, lambda: client.list_models().get())
        print(f"{name}")
        print(f"  records.read           {_summary(reads)}")
        print(f"  registry.list_models   {_summary(models)}")
        if settings.celery.broker_url.startswith("filesystem"):
            checks = _timings(max(10, calls // 10), lambda: worker_serving(client.app, "crud"))
            print(f"  worker check           {_summary(checks)}")
        return statistics.median(reads)
    finally:
        stop_process(worker)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    medians = {}
    for name, environment in BROKERS.items():
        with tempfile.TemporaryDirectory(prefix="dmr-bench-") as folder:
            directory = Path(folder)
            medians[name] = measure(name, environment(directory), directory, options.calls)
    new, old = medians.values()
    verdict = "met" if new < GOAL_MS else "NOT met"
    print(f"records.read median: file broker {new:.1f} ms, SQLAlchemy transport {old:.1f} ms "
          f"(ratio {new / old:.2f}); goal < {GOAL_MS:g} ms: {verdict}.")


if __name__ == "__main__":
    main()
