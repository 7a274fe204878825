"""The `dmr` command line: every command, its output, inputs and exit codes.

Commands run through click's runner; tasks run in-process (as a worker runs them) through a
client whose `send` applies the task here, so no broker is needed. The real CLI against real
workers is walked in tests/integration/test_newcomer_path.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from registry import DynamicModelRegistry
from tasks.client import RegistryClient
from workers.app import app
from workers.cli import cli, main
from workers.cli import common as cli_common

from .support import run_task

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

SCHEMA = {
    "title": "Product",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "price": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["name", "price"],
}
PERMISSIONS = {"fields": {"price": {"read_roles": ["admin"], "mask": "redact"}}}


class _Done:
    """A handle whose result was computed in-process (or whose error is raised on get)."""

    def __init__(self, name: str, kwargs: dict[str, Any]) -> None:
        self.name, self.kwargs = name, kwargs

    def get(self, timeout: float | None = None) -> Any:
        return run_task(self.name, **self.kwargs)


class InProcessClient(RegistryClient):
    def send(self, name: str, /, **kwargs: Any) -> Any:  # type: ignore[override]
        self._check_size(name, kwargs)
        return _Done(name, kwargs)

    def send_unanswered(self, name: str, /, **kwargs: Any) -> None:
        self.send(name, **kwargs)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamicModelRegistry]:
    app.loader.import_default_modules()  # the task modules, as a worker imports them
    registry = DynamicModelRegistry()
    app.use_registry(registry)
    client = InProcessClient(app)
    monkeypatch.setattr(cli_common.CliContext, "client", lambda self: client)
    monkeypatch.setattr("tasks.presence.worker_serving", lambda *args, **kwargs: "test@here")
    yield registry
    app.close_registry()


def dmr(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _register(tmp_path: Path) -> None:
    schema = tmp_path / "product.schema.json"
    schema.write_text(json.dumps(SCHEMA))
    result = dmr("models", "register", str(schema), "--permissions", json.dumps(PERMISSIONS))
    assert result.exit_code == 0, result.output


# -- records through the command line -------------------------------------------------------


def test_register_then_create_read_update_list_history_delete(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    _register(tmp_path)
    assert [m["name"] for m in _json(dmr("--json", "models"))] == ["Product"]

    created = _json(dmr("records", "create", "Product", '{"name": "Lamp", "price": 20}', "--json"))
    record_id = created["id"]
    seen = _json(dmr("records", "read", "Product", record_id, "--role", "user", "--json"))
    assert seen["price"] == "***" and seen["name"] == "Lamp"

    updated = dmr("records", "update", "Product", record_id, "-", "--expect-version", "1",
                  "--json", input='{"price": 18}')
    assert _json(updated)["version"] == 2

    page = _json(dmr("records", "list", "Product", "--filter", '{"name": "Lamp"}', "--json"))
    assert [item["id"] for item in page["items"]] == [record_id]
    history = _json(dmr("records", "history", "Product", record_id, "--json"))
    assert [entry["operation"] for entry in history] == ["create", "update"]

    assert dmr("records", "delete", "Product", record_id).exit_code == 0
    assert _json(dmr("records", "list", "Product", "--json"))["total"] == 0


def test_list_takes_operators_cursors_and_counts_and_prints_the_next_cursor(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    _register(tmp_path)
    for name, price in [("Lamp", 5), ("Desk", 15), ("Chair", 25), ("Rug", 35)]:
        dmr("records", "create", "Product", json.dumps({"name": name, "price": price}))
    ranged = '{"price": {"gte": 10, "lt": 30}}'
    page = _json(dmr("records", "list", "Product", "--filter", ranged, "--order-by", "price",
                     "--count", "exact", "--json"))
    assert [item["name"] for item in page["items"]] == ["Desk", "Chair"]
    assert page["total"] == 2 and page["total_exact"] is True

    first = dmr("records", "list", "Product", "--order-by", "-price", "--page-size", "3")
    assert first.exit_code == 0, first.output
    assert "4 records; page 1." in first.output
    cursor = first.output.split("Next page: --after ", 1)[1].split()[0]
    rest = dmr("records", "list", "Product", "--order-by", "-price", "--page-size", "3",
               "--after", cursor, "--json")
    assert [item["name"] for item in _json(rest)["items"]] == ["Lamp"]
    assert _json(rest)["next_cursor"] is None and _json(rest)["page"] is None

    tampered = dmr("records", "list", "Product", "--order-by", "-price", "--after",
                   cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"))
    assert tampered.exit_code != 0 and "cursor" in tampered.output
    none = _json(dmr("records", "list", "Product", "--count", "none", "--json"))
    assert none["total"] is None
    starts = _json(dmr("records", "list", "Product", "--filter",
                       '{"name": {"startswith": "D"}}', "--json"))
    assert [item["name"] for item in starts["items"]] == ["Desk"]


def test_human_output_is_a_compact_table_without_python_reprs(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    _register(tmp_path)
    listing = dmr("models").output
    assert len(listing.splitlines()) <= 3  # a header and one row, not a JSON document
    assert "Product" in listing and "name, price" in listing
    created = dmr("records", "create", "Product", '{"name": "Lamp", "price": 20}').output
    assert "Lamp" in created and "None" not in created and "True" not in created
    record_id = json.loads(dmr("--json", "records", "list", "Product").stdout)["items"][0]["id"]
    assert record_id in dmr("records", "list", "Product").output  # ids are never cut short


def test_as_of_ui_schema_form_permissions_and_audit(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    _register(tmp_path)
    record = _json(dmr("--json", "records", "create", "Product", '{"name": "A", "price": 2}'))
    then = _json(dmr("--json", "records", "as-of", "Product", record["id"], "2999-01-01T00:00:00Z"))
    assert then["name"] == "A"

    ui = _json(dmr("models", "ui-schema", "Product", "--role", "user", "--json"))
    assert ui["fields"]["price"]["readonly"] is True  # user may read (masked), not write
    form_file = tmp_path / "form.json"
    assert dmr("models", "form", "Product", "--role", "admin", "-o", str(form_file)).exit_code == 0
    assert set(json.loads(form_file.read_text())) >= {"schema", "uiSchema"}

    perms = _json(dmr("models", "permissions", "Product", "--json"))
    assert perms["fields"]["price"]["mask"] == "redact"
    changed = dmr("models", "permissions", "Product", "-", "--json",
                  input='{"roles": {"admin": ["create", "read", "list"]}}')
    assert _json(changed)["roles"]["admin"] == ["create", "list", "read"]

    stats = _json(dmr("audit", "stats", "--model", "Product", "--json"))
    assert stats["pending"] >= 1
    assert _json(dmr("audit", "compact", "--force", "--json"))["entries"] >= 1


# -- exit codes -------------------------------------------------------------------------------


def test_a_refusal_is_exit_1_with_the_error_named(registry: DynamicModelRegistry) -> None:
    result = dmr("records", "read", "Nope", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith("dmr: ModelNotFound:")


def test_invalid_data_is_exit_1_naming_the_field(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    _register(tmp_path)
    result = dmr("records", "create", "Product", '{"name": "Lamp", "price": -1}')
    assert result.exit_code == 1 and "ValidationFailed" in result.stderr
    assert "price" in result.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [("absent.json", "Cannot read the JSON Schema"), ("[1, 2]", "expected an object"),
     ("{nope", "is not JSON")],
)
def test_a_bad_input_is_exit_2(
    registry: DynamicModelRegistry, tmp_path: Path, source: str, message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = dmr("models", "register", source, "--name", "X")
    assert result.exit_code == 2 and message in result.stderr


def test_a_bad_setting_is_exit_2_naming_its_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DMR_AUDIT__CODEC", "lzma")
    assert main(["models"]) == 2
    assert "audit.codec" in capsys.readouterr().err


def test_no_worker_is_exit_3_within_about_a_second(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DMR_BROKER_URL", "memory://")
    monkeypatch.setenv("DMR_RESULT_BACKEND", "cache+memory://")
    started = time.monotonic()
    assert main(["records", "list", "Product"]) == 3
    assert time.monotonic() - started < 3
    err = capsys.readouterr().err
    assert "No worker serving queue 'crud'" in err and "dmr worker -Q crud" in err


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records", "list"]) == 2
    assert main(["nonsense"]) == 2


def test_version() -> None:
    result = dmr("--version")
    assert result.exit_code == 0 and result.output.startswith("dmr, version ")


# -- help -------------------------------------------------------------------------------------


def _all_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*path, name))
        else:
            yield (*path, name)


@pytest.mark.parametrize("path", list(_all_commands(cli)), ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = dmr(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "dmr " in result.output.split("Example:")[1]


def test_a_result_timeout_is_wall_clock(tmp_path: Path) -> None:
    # The database result backend counts only its sleeps; each poll here takes 50 ms more.
    from celery.exceptions import TimeoutError as ResultTimeout

    from tasks.client import TaskHandle

    class SlowPending:
        backend = object()  # not async: polled

        def ready(self) -> bool:
            time.sleep(0.05)
            return False

    handle = TaskHandle(SlowPending(), timeout=0.3, interval=0.01)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ResultTimeout):
        handle.get()
    assert 0.3 <= time.monotonic() - started < 0.6
