"""The `dmr` command line: services, models, records, audit, configuration.

    dmr worker                                 a worker for the registry and crud queues
    dmr models register product.schema.json    register a model from a JSON Schema file
    dmr records create Product '{"name": "Lamp", "price": 20}'
    dmr records list Product --filter '{"name": "Lamp"}'
    dmr --help, dmr <command> --help           every command, with an example

Exit codes: 0 done, 1 refused by the registry, 2 usage, 3 unavailable (workers/cli/common.py).

Adding commands (the hook other areas use)
------------------------------------------
Each module in `workers/cli/commands/` is a command group's home. It defines its click
commands and a function `register(root: click.Group) -> None` that adds them; `dmr` imports
every module there (in name order) and calls `register`, so a new module needs no edit
anywhere else. Use the helpers of `workers.cli.common` so every command behaves alike:

    # workers/cli/commands/imports.py
    import click

    from workers.cli.common import CliContext, identity_options, json_option, pass_cli, read_json

    @click.group("imports")
    def imports() -> None:
        \"\"\"Import records in bulk.\"\"\"

    @imports.command("start")
    @click.argument("model")
    @click.argument("source")
    @identity_options
    @json_option
    @pass_cli
    def start(cli: CliContext, model: str, source: str, user: str, role: str) -> None:
        \"\"\"Start an import job.

        \\b
        Example:
          dmr imports start Product products.json
        \"\"\"
        rows = read_json(source, "the rows", expect=list)      # `-` reads stdin
        job = cli.call("imports", lambda client: client.send(
            "imports.start", model=model, rows=rows, user_id=user, user_role=role))
        cli.emit(job)                                             # table, or JSON with --json

    def register(root: click.Group) -> None:
        root.add_command(imports)

`cli.call(queue, send)` checks that a worker serves the queue (about a second when none does),
sends, waits, and turns errors into the documented exit codes; raise `CliError(message,
EXIT_USAGE)` for your own usage errors. Every command's help ends with an example (a test
checks).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import click

from . import commands
from .common import CliContext

__all__ = ["cli", "main"]


def _version() -> str:
    try:
        return version("dynamic-model-registry")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(_version(), "--version", "-V", prog_name="dmr")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of tables.")
@click.option(
    "--settings", "settings_file", type=click.Path(dir_okay=False), envvar="DMR_SETTINGS",
    help="Settings file to use (env DMR_SETTINGS; see `dmr config`).",
)
@click.pass_context
def cli(ctx: click.Context, as_json: bool, settings_file: str | None) -> None:
    """Register data models and manage their records through Celery workers.

    \b
    Example:
      dmr worker &                                   # serve the registry and crud queues
      dmr models register product.schema.json        # title names the model
      dmr records create Product '{"name": "Lamp", "price": 20}'
      dmr records list Product
    """
    if settings_file:
        import os

        os.environ["DMR_SETTINGS"] = settings_file
    state = ctx.ensure_object(CliContext)
    state.as_json = state.as_json or as_json
    ctx.call_on_close(state.close)


def _register_commands(root: click.Group) -> None:
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{commands.__name__}.{module.name}")
        loaded.register(root)


_register_commands(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `dmr` and return its exit code."""
    # py-amqp warns when a remote-control reply lands on a channel being closed (the worker
    # check stops at the first answer); a command's output is its answer, not broker chatter.
    logging.getLogger("amqp").setLevel(logging.ERROR)
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="dmr",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    # Without standalone mode click returns the code of ctx.exit() (--help, --version).
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
