"""What every `dmr` command shares: its context, output, inputs, identity and exit codes.

Exit codes (README, "Command line"):

    0  done
    1  refused: the registry answered with an error (no such model or record, invalid data,
       permission denied, version conflict, ...), or `audit verify` found the trail altered
    2  usage: a bad option or argument, an unreadable input file, invalid settings
    3  unavailable: no worker serves the queue, a service cannot be reached, or no answer came
       within the result timeout
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from registry.settings import Settings
    from tasks.client import RegistryClient, TaskHandle

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CliContext",
    "CliError",
    "identity_options",
    "json_option",
    "pass_cli",
    "read_json",
    "show_value",
]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

#: Seconds a command waits for some worker to say it serves the queue.
PING_TIMEOUT = 1.0

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure shown as one line `dmr: <message>` with one of the exit codes above."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"dmr: {self.format_message()}", err=True)


class CliContext:
    """Per-invocation state: output mode, settings and a producer client, made on first use."""

    def __init__(self, *, as_json: bool = False) -> None:
        self.as_json = as_json
        self._settings: Settings | None = None
        self._client: RegistryClient | None = None
        # Piped output keeps whole lines (ids, times) for grep and cut; a terminal wraps.
        self.console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)

    # -- settings and client -----------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in effect; invalid settings end the command with exit code 2."""
        if self._settings is None:
            from registry.errors import ConfigurationError
            from registry.settings import Settings

            try:
                self._settings = Settings.load()
            except ConfigurationError as exc:
                raise CliError(str(exc), EXIT_USAGE) from None
        return self._settings

    def client(self) -> RegistryClient:
        """The producer client, closed when the command ends."""
        if self._client is None:
            from tasks.client import RegistryClient

            self._client = RegistryClient.from_settings(self.settings)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- requests ------------------------------------------------------------------------

    def call(self, queue: str, send: Callable[[RegistryClient], TaskHandle]) -> Any:
        """Check that a worker serves `queue`, send, and wait for the result.

        Raises `CliError`: exit 1 for the registry's errors, 3 when no worker or service
        answers."""
        from celery.exceptions import TimeoutError as ResultTimeout
        from kombu.exceptions import OperationalError

        from registry.errors import RegistryError
        from tasks.presence import NoWorker, worker_serving

        client = self.client()
        try:
            worker_serving(client.app, queue, PING_TIMEOUT)
            return send(client).get()
        except NoWorker as exc:
            raise CliError(str(exc), EXIT_UNAVAILABLE) from None
        except RegistryError as exc:
            raise CliError(f"{type(exc).__name__}: {exc}", EXIT_REFUSED) from None
        except ResultTimeout:
            raise CliError(
                f"No answer from queue {queue!r} within {client.settings.result_timeout:g} s "
                "(celery.result_timeout); the worker may be busy or stuck.",
                EXIT_UNAVAILABLE,
            ) from None
        except (OperationalError, OSError) as exc:
            raise CliError(
                f"The broker or result store cannot be reached: {exc}", EXIT_UNAVAILABLE
            ) from None

    # -- output --------------------------------------------------------------------------

    def emit(self, value: Any, human: Callable[[Any], Any] | None = None) -> None:
        """Print `value`: as JSON with --json, else what `human(value)` gives (a rich
        renderable or text; by default a table of the value)."""
        if self.as_json:
            click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))
            return
        self.console.print((human or auto_table)(value))


def auto_table(value: Any) -> Any:
    """A compact table: one row per item of a list, or one row per key of a mapping."""
    if isinstance(value, Mapping):
        return key_value_table(value)
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return rows_table(value)
    return show_value(value)


def rows_table(
    items: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, title: str = ""
) -> Table:
    """One row per item; columns default to every key, in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(key for item in items for key in item))
    table = Table(title=title or None, box=None, header_style="bold")
    for column in columns:  # an id is copied into the next command: never cut it
        table.add_column(column, no_wrap=True, min_width=36 if column == "id" else None)
    for item in items:
        table.add_row(*(show_value(item.get(column)) for column in columns))
    return table


def key_value_table(value: Mapping[str, Any]) -> Table:
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, item in value.items():
        table.add_row(str(key), show_value(item))
    return table


def show_value(value: Any, width: int = 60) -> str:
    """A value as a person reads it: text as is, the rest as JSON (null, true), shortened."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- inputs --------------------------------------------------------------------------------


def read_json(source: str, what: str, *, expect: type = dict) -> Any:
    """JSON from `source`: `-` reads stdin, text starting with `{` or `[` is the JSON itself,
    anything else is a file path. Exit code 2 when it cannot be read or is not `expect`."""
    try:
        if source == "-":
            text = sys.stdin.read()
        elif source.lstrip()[:1] in ("{", "["):
            text = source
        else:
            with open(source, encoding="utf-8") as file:
                text = file.read()
        found = json.loads(text)
    except OSError as exc:
        message = f"Cannot read {what} from {source!r}: {exc.strerror}."
        raise CliError(message, EXIT_USAGE) from None
    except json.JSONDecodeError as exc:
        message = f"{what.capitalize()} in {_where(source)} is not JSON: {exc}."
        raise CliError(message, EXIT_USAGE) from None
    if not isinstance(found, expect):
        raise CliError(
            f"{what.capitalize()} in {_where(source)} is a JSON {type(found).__name__}; "
            f"expected {'an object' if expect is dict else 'a list'}.",
            EXIT_USAGE,
        )
    return found


def _where(source: str) -> str:
    if source == "-":
        return "stdin"
    return "the argument" if source.lstrip()[:1] in ("{", "[") else repr(source)


# -- decorators ----------------------------------------------------------------------------

pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def json_option(command: F) -> F:
    """Add `--json` (machine output) to a command; `dmr --json ...` does the same."""

    def turn_on(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(CliContext).as_json = True

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=turn_on,
        help="Print JSON for machines instead of a table.",
    )(command)


def identity_options(command: F) -> F:
    """Add `--user` and `--role`, passed to the command as `user` and `role`."""
    command = click.option(
        "--role", "-r", envvar="DMR_ROLE", default="admin", show_default=True,
        help="Role the request is made as (env DMR_ROLE).",
    )(command)
    return click.option(
        "--user", "-u", envvar="DMR_USER", default=_login_name,
        help="User id recorded in the audit trail (env DMR_USER; default: your login name).",
    )(command)


@functools.cache
def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "cli")


def join(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in values)
