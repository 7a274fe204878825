"""`dmr demo`: the seed's Product scenario through a real queue, with no services at all.

SQLite holds the data, the file broker (tasks/file_broker.py) carries the messages and SQLite
keeps the results; consumers poll every `celery.polling_interval` seconds. The command starts a
real worker process and Flower, sends every step as a task, prints what comes back (one error
case included), verifies the audit trail, shows what Flower saw, measures the round trip,
stops both and exits 0.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from registry import DynamicModelRegistry, locations
from registry.errors import ValidationFailed
from registry.settings import Settings
from tasks.client import RegistryClient

__all__ = [
    "Product",
    "prepare_stores",
    "run_demo",
    "start_worker",
    "stop_process",
    "wait_until_serving",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Seconds to wait for the worker to answer its first task.
STARTUP_TIMEOUT = 60.0
ROUND_TRIPS = 50
PRICE_PERMISSIONS = {
    "fields": {"price": {"read_roles": ["admin", "manager"], "mask": "redact"}},
}


class Product(BaseModel):
    """The seed's example model."""

    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    description: str = ""
    is_active: bool = True


def run_demo(data_dir: Path | None = None, out: Callable[[str], None] = print) -> int:
    """Run the scenario; returns the exit code."""
    with _workspace(data_dir) as directory:
        env = embedded_environment(directory)
        settings = Settings.load(environ={**os.environ, **env})
        client = RegistryClient.from_settings(settings)
        prepare_stores(client)
        if data_dir is None:
            out("Data, broker and results: files in a temporary folder, removed at the end "
                "(dmr demo --data-dir DIR keeps them).")
        else:
            out(f"Data, broker and results: files in {directory}")
        worker = start_worker(env, directory / "worker.log")
        flower = _start_flower(env, directory / "flower.log")
        try:
            wait_until_serving(client, worker, directory / "worker.log")
            out(f"Worker process {worker.pid} is serving queues registry and crud.")
            _wait_for_flower(flower)
            scenario(client, out)
            _verify_audit(settings, out)
            _show_flower(flower, out)
            stop_process(flower.process)  # measure without Flower's polling on the same cores
            _measure(client, out)
        finally:
            stop_process(worker)
            stop_process(flower.process)
            client.close()
        out("Worker and Flower stopped cleanly.")
    return 0


def embedded_environment(directory: Path) -> dict[str, str]:
    """Overrides that put the database, broker and results in `directory` (the embedded
    default's layout, as in the per-user data directory)."""
    urls = locations.embedded_urls(directory)
    return {
        "DMR_DATABASE_URL": urls["database"],
        "DMR_BROKER_URL": urls["broker"],
        "DMR_RESULT_BACKEND": urls["results"],
    }


def scenario(client: RegistryClient, out: Callable[[str], None]) -> str:
    """Register, create as admin, masked read as user, update, a refused create, list,
    audit history; returns the record's id."""
    entry = client.register_model(
        "Product", Product, permissions=PRICE_PERMISSIONS, user_id="demo", user_role="admin"
    ).get()
    out(f"registry.register_model -> Product v{entry['version']}, fields "
        f"{', '.join(entry['fields'])}")
    laptop = {"name": "Laptop", "price": 999.99, "description": "High-performance laptop"}
    product = client.create("Product", laptop, user_id="admin", user_role="admin").get()
    out(f"records.create as admin -> {_show(product)}")
    seen = client.read("Product", product["id"], user_id="u1", user_role="user").get()
    out(f"records.read as user -> price {_json(seen['price'])} "
        "(masked: only admin and manager read it)")
    updated = client.update(
        "Product", product["id"], {"price": 899.99}, user_id="admin", user_role="admin",
        expected_version=product["version"],
    ).get()
    out(f"records.update as admin -> price {updated['price']}, version {updated['version']}")
    try:
        client.create("Product", {"name": "", "price": -1}, user_id="admin",
                      user_role="admin").get()
    except ValidationFailed as refused:
        out(f"records.create with bad data -> refused, nothing written: {refused}")
    page = client.list("Product", user_id="u1", user_role="user").get()
    out(f"records.list as user -> {page['total']} record: "
        + "; ".join(_show(item) for item in page["items"]))
    trail = client.history("Product", product["id"], user_id="u1", user_role="user").get()
    for audit in trail:
        out(f"records.history as user -> {audit['operation']}: {_json(audit['changes'])}")
    return str(product["id"])


def _verify_audit(settings: Settings, out: Callable[[str], None]) -> None:
    registry = DynamicModelRegistry.from_settings(settings)
    try:
        report = registry.verify_audit()
    finally:
        registry.close()
    verdict = "intact" if report["ok"] else "ALTERED"
    out(f"dmr audit verify -> the audit trail is {verdict} "
        f"({report.get('pending', 0)} entries waiting for compaction, hash-chained).")


def _measure(client: RegistryClient, out: Callable[[str], None]) -> None:
    page = client.list("Product", user_id="u1", user_role="user").get()
    record_id = page["items"][0]["id"]
    timings = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        client.read("Product", record_id, user_id="u1", user_role="user").get()
        timings.append((time.perf_counter() - started) * 1000)
    out(
        f"Latency: {ROUND_TRIPS} records.read calls, each sent, run by the worker and its "
        f"result read back: median {statistics.median(timings):.1f} ms, "
        f"max {max(timings):.1f} ms (goal: under 100 ms on the embedded default; each side "
        f"polls every {client.settings.polling_interval * 1000:g} ms)."
    )


def _show(record: dict[str, Any]) -> str:
    shown = {key: record[key] for key in ("id", "version", "name", "price") if key in record}
    return ", ".join(f"{key} {_json(value)}" for key, value in shown.items())


def _json(value: Any) -> str:
    """A value as JSON writes it (null, true, "text"), never as a Python repr."""
    return json.dumps(value, ensure_ascii=False)


class _Flower:
    def __init__(self, process: subprocess.Popen[bytes], port: int, auth: str) -> None:
        self.process, self.port, self.auth = process, port, auth

    def tasks(self) -> dict[str, Any]:
        return self._get("/api/tasks")

    def sees_a_live_worker(self) -> bool:
        """True once Flower's event receiver has heard a worker: from then on it records
        every task event, so tasks sent earlier would be missing from its list."""
        try:
            return any(self._get("/api/workers?status=true").values())
        except OSError:
            return False

    def _get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        token = base64.b64encode(self.auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
        return found


def _start_flower(env: dict[str, str], log: Path) -> _Flower:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    auth = f"admin:{secrets.token_urlsafe(9)}"
    flower_env = {**env, "DMR_FLOWER__PORT": str(port), "DMR_FLOWER__ADDRESS": "127.0.0.1",
                  "DMR_FLOWER__BASIC_AUTH": auth}
    return _Flower(_start(["flower"], flower_env, log), port, auth)


def _wait_for_flower(flower: _Flower) -> None:
    # Flower starts in parallel with the worker and subscribes to events a few seconds later;
    # the scenario waits for it so that Flower sees its tasks. A Flower that never hears the
    # worker is reported by _show_flower, not here: the scenario runs either way.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not flower.sees_a_live_worker():
        if time.monotonic() > deadline or flower.process.poll() is not None:
            return
        time.sleep(0.2)


def _show_flower(flower: _Flower, out: Callable[[str], None]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            tasks = flower.tasks()
            if sum(task.get("name") == "records.create" for task in tasks.values()) >= 2:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or flower.process.poll() is not None:
            out("Flower did not answer; see flower.log (dmr demo --data-dir DIR keeps it).")
            return
        time.sleep(0.2)
    names = sorted({task["name"] for task in tasks.values() if task.get("name")})
    out(f"Flower saw {len(tasks)} tasks ({', '.join(names)}) at http://127.0.0.1:{flower.port}/;"
        " run `dmr flower` next to your own worker to watch it.")


@contextmanager
def _workspace(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            sys.exit(f"dmr demo: cannot use {str(data_dir)!r} as the data directory: {exc}")
        yield data_dir.resolve()
        return
    directory = Path(tempfile.mkdtemp(prefix="dmr-demo-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def prepare_stores(client: RegistryClient) -> None:
    # Create the broker's and the result store's tables here, before the worker starts, so
    # two processes never race to create them in one SQLite file.
    with client.app.connection_for_write() as connection:
        for queue in ("registry", "crud"):
            connection.SimpleQueue(queue).close()
    client.app.backend.ResultSession().close()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return _start(
        ["worker", "-P", "solo", "-Q", "registry,crud", "-l", "warning",
         "-n", f"demo-{os.getpid()}@%h", "--", "--without-gossip", "--without-mingle"],
        env, log,
    )


def _start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    with log.open("wb") as output:  # banners and warnings go to the log, not the story
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *arguments],
            env={**os.environ, **env, "PYTHONPATH": path},
            stdout=output, stderr=subprocess.STDOUT,
        )


def wait_until_serving(
    client: RegistryClient, worker: subprocess.Popen[bytes], log: Path
) -> None:
    handle = client.list_models()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not handle.ready():
        if worker.poll() is not None:
            raise RuntimeError(
                f"The worker exited with code {worker.returncode} at start:\n"
                + log.read_text(errors="replace")
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"The worker did not answer within {STARTUP_TIMEOUT} seconds.")
        time.sleep(0.02)
    handle.get()


def stop_process(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
