"""Inspector: which tool infers each case real files hold, against frictionless, genson, pandas.

    python -m bench.bench_inspector_compare [--rows 300]

Each case is a small generated file with a `row` counter and one `value` column that shows one
thing real exports do (issue 8): codes with leading zeros, dates written as `2012/01/01`,
`Jan 1 2000` or `01/31/2012`, a column that turns from integers to text after row 100,
integers with blanks, low-cardinality text, emails, UUIDs. Every case is written twice: as CSV
and as JSON Lines (numbers as JSON numbers, blanks as null, everything else as text, as an
exporter writes them), since genson reads JSON only.

Tools, each called the way its documentation shows, with its defaults:
- inspector: `inspector.inspect(path)` on the CSV and on the JSON Lines file;
- frictionless: `frictionless.describe(path)` on the CSV (the field's type and format);
- genson: `SchemaBuilder().add_object(row)` for every JSON Lines row;
- pandas: `pandas.read_csv(path)` (the column's dtype).
A tool that is not installed is reported and left out; none is a project dependency.

A tool gets a case right when what it proposes would type the whole column as it is meant:
codes stay text, the dates are dates, the changing column is not a number type (it would
reject rows 101 on), integers with blanks are integers, the low-cardinality text is an enum,
emails and UUIDs carry that format. The table shows what each tool answered.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata
import json
import random
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import inspector

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
NUMBER_KINDS = frozenset({"integer", "number"})


@dataclass(frozen=True)
class Case:
    """One column a real file holds, how to make its values, and what a right answer is."""

    name: str
    values: Callable[[random.Random, int], list[Any]]
    right: Callable[[str], bool]
    expected: str


def codes(rng: random.Random, rows: int) -> list[Any]:
    return ["02134", "00501", *(f"{rng.randint(0, 99999):05}" for _ in range(rows - 2))]


def slash_dates(rng: random.Random, rows: int) -> list[Any]:
    return [f"{rng.randint(1990, 2024)}/{rng.randint(1, 12):02}/{rng.randint(1, 28):02}"
            for _ in range(rows)]  # fmt: skip


def month_name_dates(rng: random.Random, rows: int) -> list[Any]:
    return [f"{rng.choice(MONTHS)} {rng.randint(1, 28)} {rng.randint(1990, 2024)}"
            for _ in range(rows)]  # fmt: skip


def us_dates(rng: random.Random, rows: int) -> list[Any]:
    # Some days past the 12th, so month-first is the only reading.
    return [f"{rng.randint(1, 12):02}/{rng.randint(1, 28):02}/{rng.randint(1990, 2024)}"
            for _ in range(rows)]  # fmt: skip


def changes_after_100(rng: random.Random, rows: int) -> list[Any]:
    return [rng.randint(0, 9999) if i < 100 else f"A{rng.randint(0, 9999)}" for i in range(rows)]


def integers_with_blanks(rng: random.Random, rows: int) -> list[Any]:
    return [None if i % 7 == 3 else rng.randint(-500, 5000) for i in range(rows)]


def low_cardinality(rng: random.Random, rows: int) -> list[Any]:
    return [rng.choice(["open", "closed", "pending", "on hold"]) for _ in range(rows)]


def emails(rng: random.Random, rows: int) -> list[Any]:
    return [f"user{rng.randint(0, 10**6)}@example.{rng.choice(['com', 'org'])}"
            for _ in range(rows)]  # fmt: skip


def uuids(rng: random.Random, rows: int) -> list[Any]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(rows)]


def _kind(verdict: str) -> str:
    return verdict.split(" ", 1)[0]


CASES = [
    Case("codes with leading zeros (02134)", codes,
         lambda v: _kind(v) == "string", "string"),
    Case("dates 2012/01/01", slash_dates,
         lambda v: _kind(v) in ("date", "datetime"), "date"),
    Case("dates Jan 1 2000", month_name_dates,
         lambda v: _kind(v) in ("date", "datetime"), "date"),
    Case("dates 01/31/2012", us_dates,
         lambda v: _kind(v) in ("date", "datetime"), "date"),
    Case("integers, text after row 100", changes_after_100,
         lambda v: _kind(v) not in NUMBER_KINDS, "string (or a union)"),
    Case("integers with blanks", integers_with_blanks,
         lambda v: _kind(v) == "integer", "integer, nullable"),
    Case("low-cardinality text", low_cardinality,
         lambda v: _kind(v) == "enum", "enum"),
    Case("emails", emails, lambda v: _kind(v) == "email", "email"),
    Case("UUIDs", uuids, lambda v: _kind(v) == "uuid", "uuid"),
]  # fmt: skip


def write_case(folder: Path, index: int, values: list[Any]) -> tuple[Path, Path]:
    """The case as CSV (blanks empty) and as JSON Lines (blanks null)."""
    csv_path, jsonl_path = folder / f"case{index}.csv", folder / f"case{index}.jsonl"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "value"])
        writer.writerows([number, "" if value is None else value]
                         for number, value in enumerate(values, start=1))  # fmt: skip
    with jsonl_path.open("w", encoding="utf-8") as handle:
        for number, value in enumerate(values, start=1):
            handle.write(json.dumps({"row": number, "value": value}) + "\n")
    return csv_path, jsonl_path


# --------------------------------------------------------------------------- the tools


def ours(path: Path) -> str:
    facts = inspector.inspect(path).provenance["value"]
    return f"{facts.inferred_type} {facts.format}" if facts.format else facts.inferred_type


def frictionless_verdict(path: Path) -> str:
    frictionless: Any = importlib.import_module("frictionless")
    field = frictionless.describe(str(path)).schema.get_field("value")
    if field.constraints.get("enum"):
        return "enum"
    if field.type == "string" and field.format in ("email", "uuid"):
        return str(field.format)
    fmt = f" {field.format}" if field.format not in (None, "default") else ""
    return f"{field.type}{fmt}"


def genson_verdict(path: Path) -> str:
    genson: Any = importlib.import_module("genson")
    builder = genson.SchemaBuilder()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            builder.add_object(json.loads(line))
    schema = builder.to_schema()["properties"]["value"]
    if "enum" in schema:
        return "enum"
    if schema.get("format") in ("email", "uuid", "date", "date-time"):
        found: str = schema["format"]
        return {"date-time": "datetime"}.get(found, found)
    kinds = schema.get("type") or [item.get("type") for item in schema.get("anyOf", [])]
    if isinstance(kinds, str):
        return kinds
    real = [kind for kind in kinds if kind != "null"]
    return real[0] if len(real) == 1 else "union " + "|".join(real)


def pandas_verdict(path: Path) -> str:
    pandas: Any = importlib.import_module("pandas")
    dtype = pandas.read_csv(path)["value"].dtype
    if pandas.api.types.is_integer_dtype(dtype):
        return "integer"
    if pandas.api.types.is_float_dtype(dtype):
        return "number"
    if pandas.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pandas.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pandas.CategoricalDtype):
        return "enum"
    return f"string ({dtype})"


@dataclass(frozen=True)
class Tool:
    label: str
    distribution: str | None  # None: ours, always there
    reads: str  # "csv" or "jsonl"
    verdict: Callable[[Path], str]


TOOLS = [
    Tool("inspector CSV", None, "csv", ours),
    Tool("inspector JSONL", None, "jsonl", ours),
    Tool("frictionless", "frictionless", "csv", frictionless_verdict),
    Tool("genson JSONL", "genson", "jsonl", genson_verdict),
    Tool("pandas", "pandas", "csv", pandas_verdict),
]


def version(tool: Tool) -> str | None:
    """The tool's installed version, or None when it is not installed."""
    if tool.distribution is None:
        return inspector.InspectorInfo().version
    try:
        importlib.import_module(tool.distribution)
        return importlib.metadata.version(tool.distribution)
    except ImportError:
        return None


def answer(tool: Tool, case: Case, path: Path) -> tuple[bool, str]:
    try:
        found = tool.verdict(path)
    except Exception as exc:  # a tool that fails on a case gets it wrong, and says why
        return False, f"error: {type(exc).__name__}"
    return case.right(found), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300, help="Rows per case (at least 200).")
    options = parser.parse_args()
    rows = max(options.rows, 200)
    installed = {tool.label: version(tool) for tool in TOOLS}
    for tool in TOOLS:
        shown = installed[tool.label]
        print(f"{tool.label}: {shown if shown else 'not installed, left out'}")
    tools = [tool for tool in TOOLS if installed[tool.label]]
    table: list[list[str]] = []
    scores = dict.fromkeys((tool.label for tool in tools), 0)
    with tempfile.TemporaryDirectory() as folder:
        for index, case in enumerate(CASES):
            paths = write_case(Path(folder), index, case.values(random.Random(index), rows))
            line = [case.name, case.expected]
            for tool in tools:
                right, found = answer(tool, case, paths[0 if tool.reads == "csv" else 1])
                scores[tool.label] += right
                line.append(f"{'yes' if right else 'no'}: {found}")
            table.append(line)
    header = ["case", "right answer", *(tool.label for tool in tools)]
    table.append(["cases right", "", *(f"{scores[tool.label]} of {len(CASES)}" for tool in tools)])
    widths = [max(len(line[column]) for line in [header, *table]) for column in range(len(header))]
    print(f"\n{rows} rows per case")
    for line in [header, *table]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())


if __name__ == "__main__":
    main()
