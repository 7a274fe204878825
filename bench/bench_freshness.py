"""The per-operation cost of the registry freshness check (Invariant 2).

Before each operation a registry reads the registry version, in the operation's own
transaction, and reloads only when it changed. This measures that read on SQLite and
PostgreSQL, against the cheapest possible statement on the same connection (`SELECT 1`), and
against a whole in-process `read`, so the figure can be put in proportion.

    python -m bench.bench_freshness [--calls 5000] [--postgres URL] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from bench.bench_create import with_postgres_database
from bench.workload import DEFAULT_POSTGRES
from registry import DynamicModelRegistry


class Item(BaseModel):
    name: str


def per_call_us(calls: int, body: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        body()
    return (time.perf_counter() - start) / calls * 1e6


def measure(name: str, url: str, calls: int) -> dict[str, float | str]:
    registry = DynamicModelRegistry(url)
    registry.register_model("Item", Item)
    record = registry.create("Item", {"name": "x"}, user_role="admin")
    with registry.database.read() as conn:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        select_one = per_call_us(calls, lambda: driver.execute("SELECT 1").fetchone())
        check = per_call_us(calls, lambda: registry.catalog.state_version(conn))
    read = per_call_us(calls, lambda: registry.read("Item", record["id"], user_role="admin"))
    registry.close()
    return {"backend": name, "select_one": select_one, "check": check, "read": read}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        results.append(measure("sqlite", f"sqlite:///{Path(folder) / 'f.sqlite3'}", args.calls))
    if not args.skip_postgres:
        results.append(
            with_postgres_database(
                args.postgres, lambda url: measure("postgresql", url, args.calls)
            )
        )
    print(f"{'backend':<12}{'SELECT 1 us':>12}{'check us':>10}{'read us':>10}{'check/read':>12}")
    for r in results:
        share = float(r["check"]) / float(r["read"])
        print(
            f"{r['backend']:<12}{r['select_one']:>12.1f}{r['check']:>10.1f}"
            f"{r['read']:>10.1f}{share:>12.1%}"
        )


if __name__ == "__main__":
    main()
