"""`dmr records`: create, read, update, delete and list records; history and as-of."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group
from rich.text import Text

from ..common import (
    CliContext,
    identity_options,
    json_option,
    key_value_table,
    pass_cli,
    read_json,
    rows_table,
    show_value,
)

#: Columns the record tables show after the model's own fields, and those they leave out.
SYSTEM_COLUMNS = ("version", "updated_at")
HIDDEN_COLUMNS = ("created_at", "created_by", "updated_by", "deleted_at")


@click.group("records")
def records() -> None:
    """Records of a registered model.

    DATA, UPDATES and FILTERS are JSON objects: a file, `-` for stdin, or the JSON itself.
    --user and --role (env DMR_USER, DMR_ROLE) say who asks; role admin by default.

    \b
    Example:
      dmr records create Product '{"name": "Lamp", "price": 20}'
      dmr records list Product --filter '{"is_active": true}' --order-by -price
    """


@records.command("create")
@click.argument("model")
@click.argument("data", default="-")
@click.option("--key", "idempotency_key", help="Idempotency key (default: a new one).")
@identity_options
@json_option
@pass_cli
def create(
    cli: CliContext, model: str, data: str, idempotency_key: str | None, user: str, role: str
) -> None:
    """Create a record from DATA (stdin when left out).

    \b
    Example:
      dmr records create Product '{"name": "Lamp", "price": 20}'
      dmr records create Product product.json --user alice --role admin
    """
    values = read_json(data, "the record data")
    record = cli.call("crud", lambda client: client.create(
        model, values, user_id=user, user_role=role, idempotency_key=idempotency_key))
    cli.emit(record, key_value_table)


@records.command("read")
@click.argument("model")
@click.argument("record_id")
@identity_options
@json_option
@pass_cli
def read(cli: CliContext, model: str, record_id: str, user: str, role: str) -> None:
    """Read one record, as the role may see it (masked fields masked).

    \b
    Example:
      dmr records read Product 0b6e2c4e-... --role user
    """
    record = cli.call("crud", lambda client: client.read(model, record_id, user, role))
    cli.emit(record, key_value_table)


@records.command("update")
@click.argument("model")
@click.argument("record_id")
@click.argument("updates", default="-")
@click.option("--expect-version", type=int, help="Refuse (exit 1) unless this is the version.")
@click.option("--key", "idempotency_key", help="Idempotency key (default: a new one).")
@identity_options
@json_option
@pass_cli
def update(
    cli: CliContext, model: str, record_id: str, updates: str, expect_version: int | None,
    idempotency_key: str | None, user: str, role: str,
) -> None:
    """Change some fields of a record (UPDATES: stdin when left out).

    \b
    Example:
      dmr records update Product 0b6e2c4e-... '{"price": 18}' --expect-version 1
    """
    changes = read_json(updates, "the updates")
    record = cli.call("crud", lambda client: client.update(
        model, record_id, changes, user_id=user, user_role=role,
        expected_version=expect_version, idempotency_key=idempotency_key))
    cli.emit(record, key_value_table)


@records.command("delete")
@click.argument("model")
@click.argument("record_id")
@click.option("--expect-version", type=int, help="Refuse (exit 1) unless this is the version.")
@click.option("--key", "idempotency_key", help="Idempotency key (default: a new one).")
@identity_options
@json_option
@pass_cli
def delete(
    cli: CliContext, model: str, record_id: str, expect_version: int | None,
    idempotency_key: str | None, user: str, role: str,
) -> None:
    """Delete a record (its history stays in the audit trail).

    \b
    Example:
      dmr records delete Product 0b6e2c4e-...
    """
    result = cli.call("crud", lambda client: client.delete(
        model, record_id, user_id=user, user_role=role, expected_version=expect_version,
        idempotency_key=idempotency_key))
    cli.emit(result, key_value_table)


@records.command("list")
@click.argument("model")
@click.option("--filter", "-f", "filters", metavar="FILTERS",
              help="Filters as JSON: {field: value} for equality, {field: {operator: value}} "
                   "with eq ne gt gte lt lte in startswith is_null; a file, `-`, or the JSON "
                   "itself.")
@click.option("--order-by", help="Field to sort by; prefix - for descending (-price).")
@click.option("--page", type=click.IntRange(min=1), default=None,
              help="Page number (offset paging, up to the largest offset; default 1).")
@click.option("--page-size", type=click.IntRange(min=1), help="Records per page.")
@click.option("--after", metavar="CURSOR",
              help="Continue after a page: the next_cursor that page printed.")
@click.option("--count", type=click.Choice(["auto", "exact", "estimated", "none"]),
              help="How the total is counted (default auto: exact when cheap, else estimated).")
@identity_options
@json_option
@pass_cli
def list_records(
    cli: CliContext, model: str, filters: str | None, order_by: str | None, page: int | None,
    page_size: int | None, after: str | None, count: str | None, user: str, role: str,
) -> None:
    """List records, one row each, with filters, order and paging.

    Each page that has a next one prints its cursor; pass it as --after for that page.

    \b
    Example:
      dmr records list Product --filter '{"name": "Lamp"}' --order-by -price --page-size 20
      dmr records list Product --filter '{"price": {"gte": 10, "lt": 20}}' --count exact
      dmr records list Product --order-by -price --after eyJm...
    """
    wanted = read_json(filters, "the filters") if filters else None
    found = cli.call("crud", lambda client: client.list(
        model, user_id=user, user_role=role, filters=wanted, order_by=order_by,
        page=page if page is not None else 1, page_size=page_size, after=after, count=count))
    cli.emit(found, _page_view)


@records.command("history")
@click.argument("model")
@click.argument("record_id")
@identity_options
@json_option
@pass_cli
def history(cli: CliContext, model: str, record_id: str, user: str, role: str) -> None:
    """Show a record's audit history, oldest first.

    \b
    Example:
      dmr records history Product 0b6e2c4e-... --role user
    """
    entries = cli.call("crud", lambda client: client.history(model, record_id, user, role))
    cli.emit(entries, _history_view)


@records.command("as-of")
@click.argument("model")
@click.argument("record_id")
@click.argument("at", metavar="TIME")
@identity_options
@json_option
@pass_cli
def as_of(cli: CliContext, model: str, record_id: str, at: str, user: str, role: str) -> None:
    """Show a record as it was at TIME (ISO 8601, e.g. 2026-11-26T10:30:00Z).

    \b
    Example:
      dmr records as-of Product 0b6e2c4e-... 2026-11-26T10:30:00Z
    """
    record = cli.call("crud", lambda client: client.send(
        "records.as_of", model=model, record_id=record_id, at=at, user_id=user,
        user_role=role))
    cli.emit(record, key_value_table)


# -- views ---------------------------------------------------------------------------------


def _page_view(page: dict[str, Any]) -> Any:
    items = page.get("items", [])
    lines = [Text(_page_summary(page, len(items)))]
    if page.get("next_cursor"):
        # One unbroken line, so the cursor can be copied whole.
        lines.append(Text(f"Next page: --after {page['next_cursor']}", no_wrap=True,
                          overflow="ignore"))
    if not items:
        return Group(*lines)
    fields = [key for key in items[0] if key not in (*SYSTEM_COLUMNS, *HIDDEN_COLUMNS)]
    columns = [*fields, *(key for key in SYSTEM_COLUMNS if key in items[0])]
    return Group(rows_table(items, columns), *lines)


def _page_summary(page: dict[str, Any], shown: int) -> str:
    total = page.get("total")
    if total is None:
        counted = f"{shown} records shown"
    elif page.get("total_exact", True):
        counted = f"{total} records"
    else:
        counted = f"about {total} records (estimated)"
    where = f"page {page['page']}" if page.get("page") is not None else "a page after a cursor"
    return f"{counted}; {where}."


def _history_view(entries: list[dict[str, Any]]) -> Any:
    if not entries:
        return Text("No history.")
    rows = [
        {"version": entry.get("version"), "operation": entry.get("operation"),
         "at": entry.get("timestamp") or entry.get("at"), "by": entry.get("user_id"),
         "changes": show_value(entry.get("changes"), width=80)}
        for entry in entries
    ]
    return rows_table(rows)


def register(root: click.Group) -> None:
    root.add_command(records)
