"""`dmr config`: which settings file is in effect, where the data lives, and the URLs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from ..common import CliContext, json_option, key_value_table, pass_cli


@click.command("config")
@json_option
@pass_cli
def config(cli: CliContext) -> None:
    """Show the settings file in effect, the places searched, the data directory, and the
    database, broker and result URLs (passwords hidden).

    \b
    Example:
      dmr config
      DMR_SETTINGS=/etc/dmr/settings.toml dmr config --json
    """
    from registry import locations

    settings = cli.settings
    found = locations.find_settings_file(os.environ)
    report: dict[str, Any] = {
        "settings_file": str(found) if found else None,
        "searched": [str(path) for path in locations.settings_candidates(os.environ)],
        "data_dir": str(locations.data_dir(os.environ)),
        "database_url": hide_password(settings.database.url),
        "broker_url": hide_password(settings.celery.broker_url),
        "result_backend": hide_password(settings.celery.result_backend),
        "worker_queues": settings.celery.worker_queues,
        "flower": f"http://{settings.flower.address}:{settings.flower.port}",
    }
    cli.emit(report, _view)


def hide_password(url: str) -> str:
    """The URL with its password, if any, replaced by ***."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url, mask="***"))


def _view(report: dict[str, Any]) -> Any:
    shown = dict(report)
    shown["settings_file"] = report["settings_file"] or "none found: defaults and DMR_* only"
    shown["searched"] = "\n".join(
        f"{path}{'' if Path(path).is_file() else '  (absent)'}" for path in report["searched"]
    )
    shown["worker_queues"] = ", ".join(report["worker_queues"])
    note = Text("Override any key as DMR_<SECTION>__<KEY>; see settings.toml.", style="dim")
    return Group(key_value_table(shown), note)


def register(root: click.Group) -> None:
    root.add_command(config)
