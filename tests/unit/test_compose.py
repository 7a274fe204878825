"""docker-compose.yml runs only real entry points and sets only real settings.

No Docker engine runs here, so the file is checked by reading it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.settings import SHORT_ENV_NAMES, Settings
from workers.cli import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ["worker", "import-worker", "audit-worker", "beat", "flower"]
DMR_COMMANDS = set(cli.commands)


def _commands(service: dict[str, Any]) -> list[list[str]]:
    commands = []
    if "command" in service:
        command = service["command"]
        commands.append(command if isinstance(command, list) else shlex.split(command))
    test = service.get("healthcheck", {}).get("test", [])
    if test[:1] == ["CMD-SHELL"]:
        commands.append(shlex.split(test[1]))
    elif test[:1] == ["CMD"]:
        commands.append(test[1:])
    return commands


def test_the_stack_has_every_service_with_a_health_check() -> None:
    expected = {"postgres", "rabbitmq", "redis", *APP_SERVICES}
    assert expected <= set(SERVICES)
    for name in expected:
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no health check"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_commands_are_real_entry_points(name: str) -> None:
    for command in _commands(SERVICES[name]):
        if command[0] == "dmr":
            assert command[1] in DMR_COMMANDS, command
            _parses(command[1:])
        elif command[0] == "celery":
            assert command[1:3] == ["-A", "workers.app"], command
        else:
            assert command[0] in {"python", "test"}, command


def _parses(argv: list[str]) -> None:
    """Parse `dmr argv` down to its command, without running anything (click raises a
    UsageError for an unknown command or option)."""
    import click

    command: click.Command = cli
    context = cli.make_context("dmr", [], resilient_parsing=True)
    while isinstance(command, click.Group):
        assert argv and argv[0] in command.commands, argv
        command, argv = command.commands[argv[0]], argv[1:]
    command.make_context(command.name, list(argv), parent=context)


def test_workers_consume_real_queues() -> None:
    from tasks.names import QUEUES

    served = set()
    for name in ("worker", "import-worker", "audit-worker"):
        command = SERVICES[name]["command"]
        queues = command[command.index("--queues") + 1].split(",")
        assert set(queues) <= set(QUEUES)
        served.update(queues)
    # An import needs its chunks consumed (`imports`) and its job calls answered (`crud`).
    assert {"imports", "crud"} <= served
    audit = SERVICES["audit-worker"]["command"]
    assert audit[audit.index("--queues") + 1] == "audit"
    assert audit[audit.index("--concurrency") + 1] == "1"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_dmr_variable_is_a_real_setting(name: str, tmp_path: Path) -> None:
    environment = SERVICES[name]["environment"]
    dmr = {key: _interpolate(str(value)) for key, value in environment.items()
           if key.startswith("DMR_")}
    assert dmr
    for key in dmr:
        assert key in SHORT_ENV_NAMES or "__" in key, f"{key} names no setting"
    empty = tmp_path / "settings.toml"
    empty.write_text("")
    # Unknown keys are refused (extra="forbid"), and values must validate.
    settings = Settings.load(empty, environ=dmr)
    assert settings.database.url.startswith("postgresql+psycopg://")
    assert settings.celery.broker_url.startswith("amqp://")


def _interpolate(value: str) -> str:
    """What compose makes of `${NAME:-default}` when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
