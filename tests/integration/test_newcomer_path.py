"""The newcomer's path, with the real `dmr` command in subprocesses: start a worker and Flower,
register a model from a JSON Schema file, create, list and read records, see their history,
and find the tasks and the worker in Flower. Once on the embedded default (no services, a fresh
home directory, no settings file) and once on PostgreSQL with RabbitMQ. A missing worker costs
about a second, not a silent wait."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DMR = [str(Path(sys.executable).with_name("dmr"))]
SCHEMA = {
    "title": "Product",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "price": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["name", "price"],
}
START_TIMEOUT = 90.0


class Newcomer:
    """Runs `dmr` as a person would: in a working directory, with an environment."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.services: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DMR, *args], cwd=self.workdir, env=self.env, input=input, capture_output=True,
            text=True, timeout=120,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, f"dmr {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def start(self, *args: str, env: dict[str, str] | None = None) -> None:
        with (self.workdir / f"{args[0]}.log").open("wb") as log:
            self.services.append(subprocess.Popen(
                [*DMR, *args], cwd=self.workdir, env={**self.env, **(env or {})}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            ))

    def stop(self) -> None:
        for process in self.services:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.services:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _flower_json(port: int, auth: str, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_for(check: Any, what: str, newcomer: Newcomer) -> Any:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    logs = "\n".join(p.read_text() for p in newcomer.workdir.glob("*.log"))
    pytest.fail(f"{what} did not happen within {START_TIMEOUT} s:\n{logs[-4000:]}")


def walk(newcomer: Newcomer) -> None:
    # Nothing running yet: the command says so in about a second instead of waiting.
    baseline = time.monotonic()
    newcomer.run("health", "worker", "nobody@nowhere", "--timeout", "0.1")
    baseline = time.monotonic() - baseline
    started = time.monotonic()
    missing = newcomer.run("records", "list", "Product")
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert missing.stderr.startswith("dmr: No worker serving queue 'crud'"), missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    # Compared with a command that starts the same way and waits 0.1 s: a second's check
    # on top, not the 30 s result timeout (a loaded machine slows both starts alike).
    assert time.monotonic() - started < 2 * baseline + 2.0

    (newcomer.workdir / "product.schema.json").write_text(json.dumps(SCHEMA))
    port, auth = _free_port(), "newcomer:s3cret-pass"
    newcomer.start("worker", "-c", "1", "-n", "newcomer@%h")
    newcomer.start("flower", env={"DMR_FLOWER__PORT": str(port),
                                  "DMR_FLOWER__BASIC_AUTH": auth})
    _wait_for(lambda: newcomer.run("models").returncode == 0, "The worker answering", newcomer)

    assert "Registered Product v1" in newcomer.ok("models", "register", "product.schema.json")
    lamp = json.loads(newcomer.ok("--json", "records", "create", "Product",
                                  '{"name": "Lamp", "price": 20}'))
    newcomer.ok("records", "create", "Product", "-", input='{"name": "Desk", "price": 90}')
    listing = newcomer.ok("records", "list", "Product", "--order-by", "name")
    assert listing.index("Desk") < listing.index("Lamp") and lamp["id"] in listing
    assert "2 records" in listing
    assert "Lamp" in newcomer.ok("records", "read", "Product", lamp["id"])
    history = json.loads(newcomer.ok("records", "history", "Product", lamp["id"], "--json"))
    assert [entry["operation"] for entry in history] == ["create"]

    def flower_has_it() -> bool:
        try:
            tasks = _flower_json(port, auth, "/api/tasks")
            workers = _flower_json(port, auth, "/api/workers?refresh=1")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        created = [t for t in tasks.values() if t.get("name") == "records.create"]
        return len(created) >= 2 and any(name.startswith("newcomer@") for name in workers)

    _wait_for(flower_has_it, "Flower showing the tasks and the worker", newcomer)


def _clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMR_", "XDG_"))}
    return {**env, **extra}


@pytest.fixture
def newcomer_factory() -> Iterator[list[Newcomer]]:
    made: list[Newcomer] = []
    yield made
    for newcomer in made:
        newcomer.stop()


def test_the_newcomer_path_on_the_embedded_default(
    tmp_path: Path, newcomer_factory: list[Newcomer]
) -> None:
    home, workdir = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    workdir.mkdir()
    newcomer = Newcomer(workdir, _clean_environment(HOME=str(home)))
    newcomer_factory.append(newcomer)
    walk(newcomer)
    # One per-user data directory, whatever the working directory.
    data = home / ".local" / "share" / "dmr"
    assert (data / "dmr.sqlite3").exists() and (data / "broker" / "queues").is_dir()
    elsewhere = Newcomer(tmp_path, newcomer.env)
    assert "Lamp" in elsewhere.ok("records", "list", "Product")
    assert not list(workdir.glob("*.sqlite3"))


@pytest.fixture
def own_stack() -> Iterator[dict[str, str]]:
    """A database and a RabbitMQ virtual host of this test's own: the session's workers serve
    the shared ones, and the path starts with no worker at all."""
    from tests.conftest import create_postgres_database, drop_postgres_database

    from .conftest import REDIS_RESULTS, _rabbitmqctl

    vhost = f"dmr_newcomer_{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    database = create_postgres_database("dmr_newcomer")
    try:
        yield {
            "DMR_DATABASE_URL": database,
            "DMR_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "DMR_RESULT_BACKEND": REDIS_RESULTS,
        }
    finally:
        drop_postgres_database(database)
        _rabbitmqctl("delete_vhost", vhost)


def test_the_newcomer_path_on_postgresql_and_rabbitmq(
    tmp_path: Path, own_stack: dict[str, str], newcomer_factory: list[Newcomer]
) -> None:
    newcomer = Newcomer(tmp_path, _clean_environment(HOME=str(tmp_path), **own_stack))
    newcomer_factory.append(newcomer)
    walk(newcomer)
