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
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import inspector

COLUMNS = ["id", "name", "amount", "sold", "email", "state", "active", "zip", "note"]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow([
                i, f"customer {rng.randint(0, 99999)}",
                f"{rng.randint(0, 9999)}.{rng.randint(0, 99):02}",
                f"{rng.randint(1, 12):02}/{rng.randint(1, 28):02}/20{rng.randint(10, 24)}",
                f"user{i}@example.com", rng.choice(["CA", "NY", "TX", "WA"]),
                rng.choice(["yes", "no"]), f"{rng.randint(0, 99999):05}",
                "" if i % 5 else "called back",
            ])  # fmt: skip


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
    print(f"{rows} rows, {len(COLUMNS)} columns, {size / 1e6:.1f} MB, median of {options.rounds}")
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
