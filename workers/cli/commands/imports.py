"""`dmr import` and `dmr imports`: batch imports through the workers.

    dmr import orders.csv --model Order            import into a registered model
    dmr import orders.csv --model Order --register inspect, register, then import
    dmr imports status JOB_ID | rejects JOB_ID | cancel JOB_ID | resume JOB_ID [--source-url URL]
    dmr imports cleanup [--older-than 30d] [--dry-run]
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..common import (
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliContext,
    CliError,
    identity_options,
    json_option,
    key_value_table,
    pass_cli,
    read_json,
    rows_table,
)

#: Status keys the closing summary shows, in order.
SUMMARY = ("job_id", "model", "state", "total", "done", "rejected", "skipped", "rows_per_s",
           "started_at", "finished_at", "reason")


@click.command("import")
@click.argument("source")
@click.option("--model", "-m", required=True, help="The model to import into.")
@click.option("--register", is_flag=True,
              help="Inspect SOURCE and register the model it proposes before importing.")
@click.option("--field-map", "field_map", default=None,
              help="JSON {source column: field} (default: the model's stored map).")
@click.option("--table", default=None, help="For an SQL source (a SQLAlchemy URL): the table.")
@click.option("--chunk-size", type=click.IntRange(1, 50_000), default=None,
              help="Rows per chunk: one message and one transaction each "
                   "(default: the import's own, 5000).")
@click.option("--on-error", type=click.Choice(["reject", "abort"]), default="reject",
              show_default=True)
@click.option("--mode", type=click.Choice(["insert", "upsert"]), default="insert",
              show_default=True,
              help="upsert: a row whose --key matches a stored record updates it.")
@click.option("--key", "key", multiple=True,
              help="With --mode upsert: the unique field identifying a record (repeat for a "
                   "composite key).")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the end.")
@identity_options
@json_option
@pass_cli
def import_command(
    cli: CliContext, source: str, model: str, register: bool, field_map: str | None,
    table: str | None, chunk_size: int | None, on_error: str, mode: str, key: tuple[str, ...],
    timeout: float | None, user: str, role: str,
) -> None:
    """Import SOURCE (CSV, TSV, JSON Lines, a JSON array, Parquet or an SQL table) into
    MODEL through the workers, with a progress bar and a closing summary; --json prints the
    final status.

    \b
    Example:
      dmr import orders.csv --model Order
      dmr import orders.csv --model Order --register --json
      dmr import postgresql://db/shop --table orders --model Order
      dmr import orders.csv --model Order --mode upsert --key order_no
    """
    resource: Any = {"kind": "sql", "location": source, "table": table} if table else source
    if not table and not Path(source).exists():
        raise CliError(f"The source file {source!r} does not exist.", EXIT_USAGE)
    mapping = read_json(field_map, "the field map") if field_map else None
    if register:
        mapping = _register(cli, resource, model, user, role) if mapping is None else mapping
    options: dict[str, Any] = {"on_error": on_error, "mode": mode}
    if chunk_size is not None:  # else ImportOptions' default applies: one place for it
        options["chunk_size"] = chunk_size
    if key:
        options["key"] = list(key)
    status = _run(cli, resource, model, mapping, options, timeout, user, role)
    _summarize(cli, status)


def _summarize(cli: CliContext, status: dict[str, Any]) -> None:
    if cli.as_json:
        cli.emit(status)
    else:
        cli.console.print(key_value_table({key: status.get(key) for key in SUMMARY}))
        if status["rejected"]:
            cli.console.print(f"{status['rejected']} rows rejected: "
                              f"dmr imports rejects {status['job_id']}")
    if status["state"] == "stalled":
        raise CliError(f"The import stalled: no chunk has finished for a while. Resume it with "
                       f"dmr imports resume {status['job_id']}", EXIT_UNAVAILABLE)
    if status["state"] != "finished":
        raise CliError(f"The import ended {status['state']}: {status.get('reason')}",
                       EXIT_REFUSED)


def _register(cli: CliContext, resource: Any, model: str, user: str, role: str) -> dict[str, str]:
    """Inspect the source and register its model; returns the inspection's field map."""
    try:
        import inspector
    except ImportError:
        raise CliError("--register needs the inspector package.", EXIT_USAGE) from None
    inspection = inspector.inspect(resource, name=model).model_dump(mode="json")
    cli.call("registry", lambda client: client.register_model(
        model, inspection["json_schema"], user_id=user, user_role=role))
    return dict(inspection["field_map"])


def _run(
    cli: CliContext, resource: Any, model: str, mapping: dict[str, str] | None,
    options: dict[str, Any], timeout: float | None, user: str, role: str,
) -> dict[str, Any]:
    return _send_with_progress(cli, _estimate_rows(resource), lambda client, show: (
        client.import_records(
            model, resource, user_id=user, user_role=role, field_map=mapping,
            options=options, progress=show, timeout=timeout,
        )
    ))


def _send_with_progress(
    cli: CliContext, estimate: int | None, send: Callable[[Any, Callable[..., None]], Any]
) -> dict[str, Any]:
    """Run `send(client, progress)` with a progress bar; typed errors become exit codes."""
    from registry.errors import RegistryError
    from tasks.presence import NoWorker, worker_serving

    client = cli.client()
    try:
        worker_serving(client.app, "imports", 1.0)
    except NoWorker as exc:
        raise CliError(str(exc), EXIT_UNAVAILABLE) from None
    with _bar(cli) as bar:
        task = bar.add_task("import", total=estimate, rejected=0, rate=0.0)

        def show(status: dict[str, Any]) -> None:
            done = status.get("done", 0) + status.get("rejected", 0)
            total = status.get("total") or estimate
            bar.update(task, completed=done, total=total, rejected=status.get("rejected", 0),
                       rate=status.get("rows_per_s", 0.0))

        try:
            status: dict[str, Any] = send(client, show)
            return status
        except RegistryError as exc:
            raise CliError(f"{type(exc).__name__}: {exc}", EXIT_REFUSED) from None
        except TimeoutError as exc:
            raise CliError(str(exc), EXIT_UNAVAILABLE) from None


def _bar(cli: CliContext) -> Progress:
    return Progress(
        TextColumn("[bold]importing"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} rows"), TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TextColumn("{task.fields[rejected]:,} rejected"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=cli.console, disable=cli.as_json, transient=False,
    )


def _estimate_rows(resource: Any) -> int | None:
    """Lines in a file source, less its header: the bar's total until the job knows."""
    if not isinstance(resource, str):
        return None
    lines = 0
    with open(resource, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


@click.group("imports")
def imports() -> None:
    """Import jobs: their status, rejected rows, cancelling, resuming, cleaning up.

    \b
    Example:
      dmr imports status imp_4a86...
      dmr imports rejects imp_4a86... --page 2
      dmr imports cleanup --older-than 30d --dry-run
    """


@imports.command("status")
@click.argument("job_id")
@json_option
@pass_cli
def status(cli: CliContext, job_id: str) -> None:
    """The job's state and counts.

    \b
    Example:
      dmr imports status imp_4a864c22395155bd9bfc2f782d7becbbe8cf35b8
    """
    cli.emit(cli.call("crud", lambda client: client.import_status(job_id)), key_value_table)


@imports.command("rejects")
@click.argument("job_id")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=50, show_default=True)
@identity_options
@json_option
@pass_cli
def rejects(
    cli: CliContext, job_id: str, page: int, page_size: int, user: str, role: str
) -> None:
    """Rejected rows: row number, values as the role may see them, errors.

    \b
    Example:
      dmr imports rejects imp_4a864c22395155bd9bfc2f782d7becbbe8cf35b8 --role clerk
    """
    found = cli.call("crud", lambda client: client.import_rejects(job_id, role, page, page_size))
    rows = [{"row": item["row"], "errors": "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(row)'}: {e['msg']}" for e in item["errors"]),
        "values": json.dumps(item["values"], ensure_ascii=False)} for item in found["items"]]
    cli.emit(found, lambda _: rows_table(rows, title=f"{found['total']} rejected rows"))


@imports.command("cancel")
@click.argument("job_id")
@json_option
@pass_cli
def cancel(cli: CliContext, job_id: str) -> None:
    """Stop a job between chunks.

    \b
    Example:
      dmr imports cancel imp_4a864c22395155bd9bfc2f782d7becbbe8cf35b8
    """
    cli.emit(cli.call("crud", lambda client: client.cancel_import(job_id)), key_value_table)


@imports.command("resume")
@click.argument("job_id")
@click.option("--source-url", envvar="DMR_IMPORT_SOURCE_URL", default=None, metavar="URL",
              help="An SQL source's URL with its password, which the job does not keep "
                   "(better from env DMR_IMPORT_SOURCE_URL than on the command line).")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the end.")
@json_option
@pass_cli
def resume(cli: CliContext, job_id: str, source_url: str | None, timeout: float | None) -> None:
    """Finish a stalled job (or one whose producer stopped): read its source again, which
    must be unchanged, and send only the chunks that have no completion mark. A job that
    read an SQL table through a URL with a password keeps the URL with the password masked,
    so give the URL again (the same user, host and database, with the password).

    \b
    Example:
      dmr imports resume imp_4a864c22395155bd9bfc2f782d7becbbe8cf35b8
      DMR_IMPORT_SOURCE_URL=postgresql://loader:secret@db/shop dmr imports resume imp_4a86...
    """
    status = _send_with_progress(cli, None, lambda client, show: client.resume_import(
        job_id, source_url=source_url, progress=show, timeout=timeout))
    _summarize(cli, status)


@imports.command("cleanup")
@click.option("--older-than", "older_than", default=None, metavar="AGE",
              help="Delete jobs that ended more than AGE ago: a number and a unit, s, m, h, "
                   "d or w (default: models.import_retention_days).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@identity_options
@json_option
@pass_cli
def cleanup(
    cli: CliContext, older_than: str | None, dry_run: bool, user: str, role: str
) -> None:
    """Delete import jobs that ended (finished, cancelled, aborted or failed) more than AGE
    ago, with their chunk marks and rejected rows. Records and their audit history stay;
    running and stalled jobs are never touched. Without --older-than, the retention setting
    applies, as the hourly schedule runs it; with it, the role needs the management
    permission (models.manager_roles).

    \b
    Example:
      dmr imports cleanup --older-than 30d --dry-run
      dmr imports cleanup --older-than 12h --json
      dmr imports cleanup
    """
    days = None if older_than is None else age_in_days(older_than)
    found = _clean_up(cli, days, dry_run, user, role)
    cli.emit(found, _cleanup_summary)


def _clean_up(
    cli: CliContext, days: float | None, dry_run: bool, user: str, role: str
) -> dict[str, Any]:
    """Call `imports.cleanup` until no job is left over (each call takes a bounded number);
    returns the last answer with the counts of every call summed."""
    totals = {"jobs": 0, "chunks": 0, "rejects": 0}
    while True:
        found: dict[str, Any] = cli.call("registry", lambda client: client.cleanup_imports(
            days, dry_run=dry_run, user_id=user, user_role=role))
        for key in totals:
            totals[key] += found[key]
        # A call that took no job while others wait lost them to another cleanup: calling
        # again would only spin.
        if not found["more"] or found["jobs"] == 0:
            return {**found, **totals}


def _cleanup_summary(found: dict[str, Any]) -> str:
    verb = "Would delete" if found["dry_run"] else "Deleted"
    return (f"{verb} {found['jobs']} import jobs that ended before {found['before']}, with "
            f"{found['chunks']} chunk marks and {found['rejects']} rejected rows.")


#: Days in one of each unit `--older-than` takes.
_AGE_UNITS = {"s": 1 / 86_400, "m": 1 / 1_440, "h": 1 / 24, "d": 1.0, "w": 7.0}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def age_in_days(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s` or `2w` in days; raises `CliError` (usage) otherwise."""
    found = _AGE.fullmatch(text.strip().lower())
    if found is None:
        raise CliError(f"--older-than takes an age such as 30d, 12h or 90m, not {text!r}.",
                       EXIT_USAGE)
    return float(found.group(1)) * _AGE_UNITS[found.group(2)]


def register(root: click.Group) -> None:
    root.add_command(import_command)
    root.add_command(imports)


__all__ = ["register"]
