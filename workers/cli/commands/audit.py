"""`dmr audit`: statistics, compaction and verification of the audit trail."""

from __future__ import annotations

from typing import Any

import click

from ..common import (
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    CliContext,
    CliError,
    json_option,
    key_value_table,
    pass_cli,
)


@click.group("audit")
def audit() -> None:
    """The audit trail: stats, compaction, verification.

    \b
    Example:
      dmr audit stats --model Product
      dmr audit verify
    """


@audit.command("stats")
@click.option("--model", help="Only this model's entries and blocks.")
@json_option
@pass_cli
def stats(cli: CliContext, model: str | None) -> None:
    """Count pending entries and compressed blocks (asks the audit worker).

    \b
    Example:
      dmr audit stats --model Product --json
    """
    found = cli.call("audit", lambda client: client.send("audit.stats", model=model))
    cli.emit(found, key_value_table)


@audit.command("compact")
@click.option("--force", is_flag=True, help="Compact now, even a partial block.")
@json_option
@pass_cli
def compact(cli: CliContext, force: bool) -> None:
    """Compact pending audit entries into blocks now (asks the audit worker).

    \b
    Example:
      dmr audit compact --force
    """
    done = cli.call("audit", lambda client: client.send("audit.compact", force=force))
    cli.emit(done, key_value_table)


@audit.command("verify")
@json_option
@pass_cli
def verify(cli: CliContext) -> None:
    """Walk the hash chain and pending entries against the database (exit 1 if altered).

    Runs here, against the shared database, so it needs no broker and works when the audit
    worker is the thing in doubt. Exit 3 when the trail cannot be read at all, so an alert
    can tell tampering from an outage.

    \b
    Example:
      dmr audit verify --json
    """
    report = _verify_here(cli)
    cli.emit(report, _report_view)
    if not report.get("ok"):
        raise click.exceptions.Exit(EXIT_REFUSED)


def _verify_here(cli: CliContext) -> dict[str, Any]:
    import sqlalchemy.exc

    from registry import DynamicModelRegistry
    from registry.errors import RegistryError

    try:
        registry = DynamicModelRegistry.from_settings(cli.settings)
        try:
            return dict(registry.verify_audit())
        finally:
            registry.close()
    except (RegistryError, sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        raise CliError(f"Could not check the audit trail: {exc}", EXIT_UNAVAILABLE) from None


def _report_view(report: dict[str, Any]) -> Any:
    return key_value_table(report)


def register(root: click.Group) -> None:
    root.add_command(audit)
