"""`dmr inspect` and `dmr register --from`: models proposed from data, as inspection documents.

`register --from` writes the model and its provenance to the shared database directly (as
`dmr audit verify` reads it): registration is a catalog write that every worker sees from its
next operation, and the `registry.register_model` task carries no provenance.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from ..common import (
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliContext,
    CliError,
    json_option,
    pass_cli,
    read_json,
)

_STDIN = "-"
_KINDS = ["csv", "tsv", "jsonl", "json", "parquet", "json_schema", "openapi"]
_MODES = ["crud", "cqrs", "hybrid"]


@click.command("inspect")
@click.argument("source")
@click.option("--table", help="The SQL table (or OpenAPI component) to inspect.")
@click.option("--kind", type=click.Choice(_KINDS), help="The file's kind (default: sniffed).")
@click.option("--name", help="Model name (default: from the file or table).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the inspection document to this file.")  # fmt: skip
@click.option("--sample-rows", type=click.IntRange(min=1), help="Rows read to infer types.")
@click.option("--confidence", type=click.FloatRange(0, 1), help="Share a type must read.")
@click.option("--enum-max-distinct", type=click.IntRange(min=0), help="Largest enum.")
@click.option("--examples", type=click.Choice(["safe", "all", "none"]), help="Example values.")
@json_option
@pass_cli
def inspect_source(
    cli: CliContext, source: str, table: str | None, kind: str | None, name: str | None,
    output: Path | None, sample_rows: int | None, confidence: float | None,
    enum_max_distinct: int | None, examples: str | None,
) -> None:  # fmt: skip
    """Propose a model for a file (`-` for stdin) or an SQL table: the inspection document.

    Review and edit the document, then register it with `dmr register --from`.

    \b
    Example:
      dmr inspect cars.csv -o cars.inspection.json
      dmr inspect 'postgresql+psycopg://app@db/shop' --table orders --json
      dmr inspect - --kind csv < cars.csv
    """
    import inspector

    settings: dict[str, Any] = {
        key: value
        for key, value in (
            ("sample_rows", sample_rows),
            ("confidence", confidence),
            ("enum_max_distinct", enum_max_distinct),
            ("examples", examples),
        )
        if value is not None
    }
    try:
        with _resource(source, table, kind) as resource:
            inspection = inspector.inspect(resource, name, **settings)
    except inspector.SourceUnavailable as exc:
        raise CliError(str(exc), EXIT_UNAVAILABLE) from None
    except inspector.InspectorError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if source == _STDIN:
        inspection.source.location = "<stdin>"
    document = inspection.model_dump(mode="json")
    if output is not None:
        output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    cli.emit(document, lambda found: Text(_summary(found, output)))


@contextmanager
def _resource(source: str, table: str | None, kind: str | None) -> Iterator[Any]:
    if source != _STDIN:
        if "://" in source:
            yield {"kind": "sql", "location": source, "table": table}
        elif kind or table:
            yield {"kind": kind, "location": source, "table": table}
        else:
            yield source
        return
    # The readers sniff the start, then stream from it again: spool stdin to a file.
    with tempfile.NamedTemporaryFile(suffix=f".{kind or 'csv'}") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield {"kind": kind or "csv", "location": spool.name, "table": table}


def _summary(document: dict[str, Any], written: Path | None) -> str:
    source = document["source"]
    total = source.get("rows_total")
    lines = [
        f"{document['name']}: {source['kind']} {source['location']}"
        + (f" table {source['table']}" if source.get("table") else "")
        + f", {source['rows_sampled']} rows sampled"
        + (f" of {total}" if total is not None else ""),
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
    if written is not None:
        lines.append(f"written to {written}; register it with: dmr register --from {written}")
    return "\n".join(lines)


@click.command("register")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="INSPECTION",
    help="The inspection document: a file, `-` for stdin, or the JSON itself.",
)
@click.option("--name", help="Model name (default: the inspection's name).")
@click.option(
    "--permissions",
    "permissions_source",
    metavar="PERMISSIONS",
    help="Permissions: a JSON file, `-` for stdin, or the JSON itself.",
)
@click.option("--mode", type=click.Choice(_MODES), default="crud", show_default=True)
@click.option("--force", is_flag=True, help="Apply incompatible changes (drops data).")
@json_option
@pass_cli
def register_from(
    cli: CliContext, source: str, name: str | None, permissions_source: str | None,
    mode: str, force: bool,
) -> None:  # fmt: skip
    """Register the model of an inspection document, with its provenance and field map.

    (A plain JSON Schema registers with `dmr models register`.)

    \b
    Example:
      dmr inspect cars.csv -o cars.inspection.json
      dmr register --from cars.inspection.json --name Car
    """
    import sqlalchemy.exc

    from registry import DynamicModelRegistry
    from registry.errors import RegistryError

    document = read_json(source, "the inspection")
    permissions = read_json(permissions_source, "the permissions") if permissions_source else None
    try:
        registry = DynamicModelRegistry.from_settings(cli.settings)
        try:
            model = registry.register_inspection(
                document, name, operation_mode=mode, permissions=permissions, force=force
            )
            described = registry.model_info(model).describe()
        finally:
            registry.close()
    except RegistryError as exc:
        raise CliError(f"{type(exc).__name__}: {exc}", EXIT_REFUSED) from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        raise CliError(f"The database cannot be reached: {exc}", EXIT_UNAVAILABLE) from None
    cli.emit(described, _registered)


def _registered(entry: dict[str, Any]) -> Text:
    return Text(
        f"Registered {entry['name']} version {entry['version']}: {', '.join(entry['fields'])}"
    )


def register(root: click.Group) -> None:
    root.add_command(inspect_source)
    root.add_command(register_from)
