"""`dmr cqrs`: send a command, run a query, follow the event feed, define and rebuild
projections, and show how far each projection has got."""

from __future__ import annotations

from typing import Any

import click

from ..common import (
    CliContext,
    auto_table,
    identity_options,
    json_option,
    key_value_table,
    pass_cli,
    read_json,
)


@click.group("cqrs")
def cqrs() -> None:
    """Commands, queries and projections of models in cqrs or hybrid mode.

    COMMAND, QUERY and DEFINITION are JSON objects: a file, `-` for stdin, or the JSON itself.

    \b
    Example:
      dmr cqrs command '{"type": "create", "model": "Order", "data": {"category": "books"}}'
      dmr cqrs status
    """


@cqrs.command("command")
@click.argument("command", default="-")
@identity_options
@json_option
@pass_cli
def command(cli: CliContext, command: str, user: str, role: str) -> None:
    """Send a command (create, update, delete or a custom one) and show its events.

    \b
    Example:
      dmr cqrs command '{"type": "update", "model": "Order", "aggregate_id": "0b6e...",
                         "data": {"status": "paid"}, "expected_version": 1}'
    """
    body = read_json(command, "the command")
    result = cli.call("cqrs", lambda client: client.execute_command(body, user, role))
    cli.emit(result, key_value_table)


@cqrs.command("query")
@click.argument("query", default="-")
@click.option("--min-position", type=int, help="Wait until the projection has this event.")
@click.option("--wait", "wait_seconds", type=float, help="Seconds to wait for --min-position.")
@identity_options
@json_option
@pass_cli
def query(
    cli: CliContext, query: str, min_position: int | None, wait_seconds: float | None,
    user: str, role: str,
) -> None:
    """Run a query: get one record, list records, or read a declared projection.

    \b
    Example:
      dmr cqrs query '{"type": "projection", "projection": "sales_by_category"}'
      dmr cqrs query '{"type": "get", "model": "Order", "aggregate_id": "0b6e..."}'
    """
    body = read_json(query, "the query")
    result = cli.call("crud", lambda client: client.execute_query(
        body, user, role, min_position=min_position, wait_seconds=wait_seconds))
    cli.emit(result, _page_or_record)


@cqrs.command("events")
@click.option("--after", "after_position", type=int, default=0, show_default=True,
              help="Position to read after.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--model", help="Only this model's events.")
@identity_options
@json_option
@pass_cli
def events(
    cli: CliContext, after_position: int, limit: int, model: str | None, user: str, role: str
) -> None:
    """Read the event feed, masked for the role.

    \b
    Example:
      dmr cqrs events --after 120 --model Order --json
    """
    found = cli.call("crud", lambda client: client.events(
        after_position, limit, user, role, model=model))
    cli.emit(found, lambda value: auto_table([
        {"position": e["position"], "model": e["model"], "aggregate_id": e["aggregate_id"],
         "version": e["version"], "type": e["type"]} for e in value["events"]]))


@cqrs.command("define")
@click.argument("definition", default="-")
@click.option("--force", is_flag=True, help="Replace a different definition of the name.")
@identity_options
@json_option
@pass_cli
def define(cli: CliContext, definition: str, force: bool, user: str, role: str) -> None:
    """Declare a projection (it is filled from the first event by the projector).

    \b
    Example:
      dmr cqrs define '{"name": "sales_by_category", "model": "Order",
                        "group_by": ["category"], "measures": {"orders": ["count"]}}'
    """
    body = read_json(definition, "the projection definition")
    described = cli.call("registry", lambda client: client.define_projection(
        body, user, role, force=force))
    cli.emit(described, key_value_table)


@cqrs.command("rebuild")
@click.argument("name")
@json_option
@pass_cli
def rebuild(cli: CliContext, name: str) -> None:
    """Replay a projection into a shadow table and swap it in (records:<Model> for a model's
    table).

    \b
    Example:
      dmr cqrs rebuild sales_by_category
    """
    done = cli.call("cqrs", lambda client: client.rebuild_projection(name))
    cli.emit(done, key_value_table)


@cqrs.command("status")
@json_option
@pass_cli
def status(cli: CliContext) -> None:
    """Show each projection's checkpoint, the store's head and the lag in events, and
    where and why a projection is blocked by an event it cannot apply.

    \b
    Example:
      dmr cqrs status --json
    """
    found = cli.call("cqrs", lambda client: client.projection_status())
    cli.emit(found, lambda value: auto_table(
        [{"projection": name, **figures, "blocked": _blocked_line(figures.get("blocked"))}
         for name, figures in sorted(value.items())]))


def _blocked_line(blocked: Any) -> str:
    if not blocked:
        return ""
    return f"at {blocked['position']}: {blocked['reason']}"


def _page_or_record(value: Any) -> Any:
    if isinstance(value, dict) and "items" in value:
        return auto_table(value["items"])
    return key_value_table(value)


def register(root: click.Group) -> None:
    root.add_command(cqrs)
