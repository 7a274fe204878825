"""Imports that meet stored records, in-process, against a plain insert in the same run.

A model with two unique fields (`code`, `email`) and two others; generated CSV files of
`--rows` rows each, imported with `registry.import_records` in this process (no broker: this
measures the write path), on PostgreSQL and on SQLite:

    insert        every row new: the unique fields cost only their indexes (the baseline);
    upsert        the same rows again with mode "upsert" on `code`, one row in ten changed:
                  matching by key, updates with their audit entries, the rest unchanged;
    duplicates    new rows, one in fifty repeating a stored email: the chunk's first write
                  fails, the duplicates are found by a query and rejected, the rest written.

Each figure is printed with its ratio to `insert`. There is no goal in the issue for these
paths; the ratios show what a key or a duplicate costs.

    python -m bench.bench_import_keyed [--rows 50000] [--chunk-size 5000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from registry import DynamicModelRegistry

from .bench_celery import postgres_database
from .workload import DEFAULT_POSTGRES

HEADER = ["code", "email", "name", "age"]


class Member(BaseModel):
    code: str = Field(json_schema_extra={"x-unique": True})
    email: str = Field(json_schema_extra={"x-unique": True})
    name: str
    age: int = Field(ge=0)


def write(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def files(folder: Path, rows: int) -> dict[str, Path]:
    first: list[list[Any]] = [[f"C{i}", f"m{i}@example.com", f"M{i}", i % 90]
                              for i in range(rows)]
    changed = [[c, e, n, a + 1 if i % 10 == 0 else a] for i, (c, e, n, a) in enumerate(first)]
    fresh = [[f"C{i}", f"m{i}@example.com" if i % 50 else f"m{i - rows}@example.com", f"M{i}",
              i % 90] for i in range(rows, 2 * rows)]
    return {"insert": write(folder / "insert.csv", first),
            "upsert": write(folder / "upsert.csv", changed),
            "duplicates": write(folder / "duplicates.csv", fresh)}


def run(url: str, sources: dict[str, Path], rows: int, chunk_size: int) -> dict[str, float]:
    registry = DynamicModelRegistry(url)
    try:
        registry.register_model("Member", Member)
        options = {"insert": {}, "upsert": {"mode": "upsert", "key": ["code"]},
                   "duplicates": {}}
        rates: dict[str, float] = {}
        for name, source in sources.items():
            started = time.perf_counter()
            status = registry.import_records(
                "Member", source, user_id="bench", user_role="admin",
                options={"chunk_size": chunk_size, **options[name]},
            )
            seconds = time.perf_counter() - started
            assert status["state"] == "finished", status
            assert status["done"] + status["rejected"] == rows, status
            rates[name] = rows / seconds
        return rates
    finally:
        registry.close()


def report(title: str, rates: dict[str, float]) -> None:
    print(f"\n{title}")
    base = rates["insert"]
    for name, rate in rates.items():
        print(f"  {name:<12} {rate:>10,.0f} rows/s   x{rate / base:.2f} of insert")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES,
                        help="an admin URL that may CREATE DATABASE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = files(folder, args.rows)
        with postgres_database(args.postgres) as url:
            report(f"PostgreSQL, {args.rows:,} rows per import",
                   run(url, sources, args.rows, args.chunk_size))
        report(f"SQLite, {args.rows:,} rows per import",
               run(f"sqlite:///{folder / 'bench.sqlite3'}", sources, args.rows,
                   args.chunk_size))


if __name__ == "__main__":
    main()
