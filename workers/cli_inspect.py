"""`dmr inspect` and `dmr register --from`: inspections from the command line.

    dmr inspect cars.csv                          a summary of the proposed model
    dmr inspect cars.csv --json                   the inspection document
    dmr inspect cars.csv -o cars.inspection.json  write the document to review and edit
    dmr inspect - --kind csv < cars.csv           a file from standard input
    dmr inspect postgresql://u@h/db --table cars  an SQL table by reflection
    dmr register --from cars.inspection.json [--name Car]

`register --from` writes the model and its provenance to the shared database directly (as
`audit-verify` reads it): registration is a catalog write, and every worker sees it from its next
operation, so no broker is needed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "register_from"]

_STDIN = "-"
_KINDS = ("csv", "tsv", "jsonl", "json", "json_schema", "openapi")


def add_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    register: argparse.ArgumentParser,
) -> None:
    """Add `inspect`, and `--from` to the `register` command."""
    inspect = commands.add_parser("inspect", help="propose a model for a file or an SQL table")
    inspect.add_argument("source", help="a file, '-' for standard input, or an SQLAlchemy URL")
    inspect.add_argument("--table", help="the SQL table (or OpenAPI component)")
    inspect.add_argument("--kind", choices=_KINDS, help="the file's kind (default: sniffed)")
    inspect.add_argument("--name", help="model name (default: from the file or table)")
    inspect.add_argument("--json", action="store_true", help="print the inspection document")
    inspect.add_argument("-o", "--output", type=Path, help="write the document to this file")
    inspect.add_argument("--sample-rows", type=int, default=None, help="rows read to infer")
    inspect.add_argument("--confidence", type=float, default=None, help="e.g. 0.95")
    inspect.add_argument("--enum-max-distinct", type=int, default=None)
    inspect.add_argument("--examples", choices=("safe", "all", "none"), default=None)
    inspect.set_defaults(run=_inspect)
    register.add_argument(
        "--from", dest="inspection", type=Path, help="register from an inspection document"
    )


def _inspect(options: argparse.Namespace, extra: list[str]) -> int:
    import inspector

    settings = {
        key: value
        for key, value in (
            ("sample_rows", options.sample_rows),
            ("confidence", options.confidence),
            ("enum_max_distinct", options.enum_max_distinct),
            ("examples", options.examples),
        )
        if value is not None
    }
    try:
        with _resource(options) as resource:
            inspection = inspector.inspect(resource, options.name, **settings)
    except inspector.InspectorError as exc:
        print(f"dmr inspect: {exc}", file=sys.stderr)
        return 1
    if options.source == _STDIN:
        inspection.source.location = "<stdin>"
    document = inspection.model_dump(mode="json")
    if options.output:
        options.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if options.json:
        print(json.dumps(document, indent=2))
    else:
        print(_summary(document, options.output))
    return 0


@contextmanager
def _resource(options: argparse.Namespace) -> Iterator[Any]:
    if options.source != _STDIN:
        if "://" in options.source:
            yield {"kind": "sql", "location": options.source, "table": options.table}
        elif options.kind or options.table:
            yield {"kind": options.kind, "location": options.source, "table": options.table}
        else:
            yield options.source
        return
    # The readers sniff, then stream; standard input is spooled to a file they can reopen.
    with tempfile.NamedTemporaryFile(suffix=f".{options.kind or 'csv'}") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield {"kind": options.kind or "csv", "location": spool.name, "table": options.table}


def _summary(document: dict[str, Any], written: Path | None) -> str:
    source = document["source"]
    lines = [
        f"{document['name']}: {source['kind']} {source['location']}"
        + (f" table {source['table']}" if source.get("table") else "")
        + f", {source['rows_sampled']} rows sampled"
        + (f" of {source['rows_total']}" if source.get("rows_total") is not None else ""),
        f"{'field':<28} {'type':<12} {'null':>6} {'distinct':>9}  format / source name",
    ]
    required = set(document["json_schema"].get("required", []))
    for field, facts in document["provenance"].items():
        nulls = facts.get("null_fraction")
        notes = [facts.get("format") or ""]
        if facts["source_field"] != field:
            notes.append(f"<- {facts['source_field']!r}")
        lines.append(
            f"{field + ('' if field in required else '?'):<28} {facts['inferred_type']:<12} "
            f"{'' if nulls is None else f'{nulls:.0%}':>6} {facts.get('distinct', ''):>9}  "
            + " ".join(note for note in notes if note)
        )
    if document["primary_key"]:
        lines.append(f"primary key: {', '.join(document['primary_key'])}")
    lines += [f"warning: {warning}" for warning in document["warnings"]]
    if written:
        lines.append(f"written to {written}; register it with: dmr register --from {written}")
    return "\n".join(lines)


def register_from(options: argparse.Namespace) -> int:
    """`dmr register --from FILE`: register an inspection document in the shared database."""
    from registry import DynamicModelRegistry
    from registry.errors import RegistryError

    try:
        document = json.loads(Path(options.inspection).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"dmr register: cannot read {str(options.inspection)!r}: {exc}", file=sys.stderr)
        return 2
    permissions = None
    if options.permissions:
        permissions = json.loads(Path(options.permissions).read_text(encoding="utf-8"))
    registry = DynamicModelRegistry.from_settings()
    try:
        name = registry.register_inspection(
            document, options.name, operation_mode=options.mode,
            permissions=permissions, force=options.force,
        )  # fmt: skip
        print(json.dumps(registry.model_info(name).describe(), indent=2))
    except RegistryError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    return 0
