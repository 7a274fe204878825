"""Inspector: how fast rows stream and how long an inspection takes, against plain `csv`.

    python -m bench.bench_inspector [--rows 300000] [--rounds 3]

A generated CSV of `--rows` rows and 9 typed columns (integer, text, decimal, US date, email,
enum, boolean, zip code with leading zeros, nullable text) is read:

- baseline: `csv.reader` turning each line into a dict (the least any row reader does);
- `open_rows`: the inspector's reader (sniffed dialect and encoding, row numbers);
- `open_rows` + `RowParser.read`: rows typed with the inspection's formats, as an import uses;
- `inspect`: sampling 20,000 rows, inferring every column, hashing the whole file.

It prints rows/s (median of the rounds), the ratio to the baseline, and the peak memory
(tracemalloc) of streaming the whole file, which stays flat whatever the file's size.

With pyarrow installed (the `parquet` extra) the same rows are also written as a Parquet file
(typed columns, row groups of 20,000 rows) and read by pyarrow's own batches turned into
dicts (`iter_batches` + `to_pylist`, the least a Parquet row reader does: its baseline) and
by `open_rows`, with the peak memory of both Arrow's allocations and Python's.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import decimal
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import inspector

COLUMNS = ["id", "name", "amount", "sold", "email", "state", "active", "zip", "note"]


def generate_rows(rows: int) -> Iterator[list[Any]]:
    rng = random.Random(7)
    for i in range(rows):
        yield [
            i, f"customer {rng.randint(0, 99999)}",
            f"{rng.randint(0, 9999)}.{rng.randint(0, 99):02}",
            f"{rng.randint(1, 12):02}/{rng.randint(1, 28):02}/20{rng.randint(10, 24)}",
            f"user{i}@example.com", rng.choice(["CA", "NY", "TX", "WA"]),
            rng.choice(["yes", "no"]), f"{rng.randint(0, 99999):05}",
            "" if i % 5 else "called back",
        ]  # fmt: skip


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(generate_rows(rows))


def baseline(path: Path) -> int:
    count = 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for fields in reader:
            dict(zip(header, fields, strict=True))
            count += 1
    return count


def streamed(path: Path) -> int:
    count = 0
    with inspector.open_rows(path) as rows:
        for _row in rows:
            count += 1
    return count


def typed(path: Path, inspection: inspector.Inspection) -> int:
    read = inspection.row_parser().read
    count = 0
    with inspector.open_rows(
        path, field_map=inspection.field_map, options=inspection.source.options
    ) as rows:
        for row in rows:
            read(row.values)
            count += 1
    return count


def timed(run: Callable[[], int], rounds: int) -> tuple[float, int]:
    """(median seconds, rows) over `rounds` runs."""
    times, count = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def peak_memory(run: Callable[[], int]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- Parquet


def generate_parquet(path: Path, rows: int) -> bool:
    """The same rows as a typed Parquet file; False when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    columns: list[list[Any]] = [[] for _ in COLUMNS]
    for row in generate_rows(rows):
        for values, value in zip(columns, row, strict=True):
            values.append(value)
    ids, names, amounts, sold, emails, states, active, zips, notes = columns
    table = pa.table({
        "id": pa.array(ids, pa.int64()), "name": names,
        "amount": pa.array([decimal.Decimal(value) for value in amounts], pa.decimal128(8, 2)),
        "sold": pa.array([datetime.datetime.strptime(value, "%m/%d/%Y").date() for value in sold]),
        "email": emails, "state": pa.array(states).dictionary_encode(),
        "active": [value == "yes" for value in active], "zip": zips,
        "note": [value or None for value in notes],
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=20_000)
    return True


def arrow_batches(path: Path) -> int:
    import pyarrow.parquet as pq

    count = 0
    with pq.ParquetFile(path, pre_buffer=False) as parquet:
        for batch in parquet.iter_batches(batch_size=10_000):
            count += len(batch.to_pylist())
    return count


def parquet_peaks(path: Path) -> tuple[int, int]:
    """(Arrow's, Python's) peak bytes while `open_rows` streams the whole Parquet file."""
    import pyarrow as pa

    before, arrow_peak, count = pa.total_allocated_bytes(), 0, 0
    tracemalloc.start()
    try:
        with inspector.open_rows(path) as rows:
            for _row in rows:
                count += 1
                if count % 1000 == 0:
                    arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - before)
        return arrow_peak, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_parquet(folder: Path, rows: int, rounds: int, csv_base: float) -> None:
    path = folder / "sales.parquet"
    if not generate_parquet(path, rows):
        print("Parquet: pyarrow not installed (the parquet extra), left out")
        return
    base, count = timed(lambda: arrow_batches(path), rounds)
    stream, _ = timed(lambda: streamed(path), rounds)
    arrow_peak, python_peak = parquet_peaks(path)
    size = path.stat().st_size
    print(f"\nParquet, the same {count} rows, {size / 1e6:.1f} MB, row groups of 20,000")
    print(f"{'reader':<34} {'rows/s':>10} {'vs arrow':>12} {'vs csv+dict':>12}")
    for label, seconds in (
        ("iter_batches + to_pylist (baseline)", base),
        ("open_rows (Parquet)", stream),
    ):
        print(f"{label:<34} {count / seconds:>10.0f} {base / seconds:>12.2f} "
              f"{csv_base / seconds:>12.2f}")  # fmt: skip
    print(f"peak memory streaming the whole file: Arrow {arrow_peak / 1e6:.1f} MB, "
          f"Python {python_peak / 1e6:.1f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sales.csv"
        generate(path, options.rows)
        size = path.stat().st_size
        inspect_seconds, _ = timed(lambda: len(inspector.inspect(path).provenance), options.rounds)
        inspection = inspector.inspect(path)
        base, rows = timed(lambda: baseline(path), options.rounds)
        stream, _ = timed(lambda: streamed(path), options.rounds)
        parse, _ = timed(lambda: typed(path, inspection), options.rounds)
        peak = peak_memory(lambda: streamed(path))
        report(rows, size, options.rounds, base, stream, parse, inspect_seconds, inspection, peak)
        bench_parquet(Path(folder), options.rows, options.rounds, base)


def report(
    rows: int, size: int, rounds: int, base: float, stream: float, parse: float,
    inspect_seconds: float, inspection: inspector.Inspection, peak: int,
) -> None:  # fmt: skip
    print(f"{rows} rows, {len(COLUMNS)} columns, {size / 1e6:.1f} MB, median of {rounds}")
    print(f"{'reader':<34} {'rows/s':>10} {'vs csv+dict':>12}")
    for label, seconds in (
        ("csv.reader + dict (baseline)", base),
        ("open_rows", stream),
        ("open_rows + RowParser.read", parse),
    ):
        print(f"{label:<34} {rows / seconds:>10.0f} {base / seconds:>12.2f}")
    kinds = {name: facts.inferred_type for name, facts in inspection.provenance.items()}
    print(f"inspect (20,000-row sample, sha256 of the file): {inspect_seconds:.2f} s")
    print(f"inferred: {kinds}")
    print(f"peak memory streaming the whole file: {peak / 1e6:.1f} MB (file {size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
