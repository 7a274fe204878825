"""`dmr demo`: the seed's Product scenario through a real queue, with no services at all.

SQLite holds the data, kombu's SQLAlchemy transport on SQLite is the broker and SQLite keeps
the results; everything polls every `celery.polling_interval` seconds (kombu's default is one
second). The command starts a real worker process, sends every step as a task, prints what
comes back, measures the round trip, stops the worker and exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from registry.settings import Settings
from tasks.client import RegistryClient

__all__ = ["Product", "run_demo"]

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
        _prepare_stores(client)
        out(f"Data, broker and results: SQLite files in {directory}")
        worker = _start_worker(env, directory / "worker.log")
        try:
            _wait_until_serving(client, worker, directory / "worker.log")
            out(f"Worker process {worker.pid} is serving queues registry and crud.")
            scenario(client, out)
        finally:
            _stop(worker)
            client.close()
        out("Worker stopped cleanly.")
    return 0


def embedded_environment(directory: Path) -> dict[str, str]:
    """Overrides that put the database, broker and results in SQLite files in `directory`."""
    return {
        "DMR_DATABASE_URL": f"sqlite:///{directory / 'dmr.sqlite3'}",
        "DMR_BROKER_URL": f"sqla+sqlite:///{directory / 'broker.sqlite3'}",
        "DMR_RESULT_BACKEND": f"db+sqlite:///{directory / 'results.sqlite3'}",
    }


def scenario(client: RegistryClient, out: Callable[[str], None]) -> None:
    """Register, create as admin, masked read as user, update, list, audit history."""
    entry = client.register_model(
        "Product", Product, permissions=PRICE_PERMISSIONS, user_id="demo", user_role="admin"
    ).get()
    out(f"registry.register_model -> Product v{entry['version']}, fields {entry['fields']}")
    laptop = {"name": "Laptop", "price": 999.99, "description": "High-performance laptop"}
    product = client.create("Product", laptop, user_id="admin", user_role="admin").get()
    out(f"records.create as admin -> {_show(product)}")
    seen = client.read("Product", product["id"], user_id="u1", user_role="user").get()
    out(f"records.read as user -> price {seen['price']!r} (masked: read_roles admin, manager)")
    updated = client.update(
        "Product", product["id"], {"price": 899.99}, user_id="admin", user_role="admin",
        expected_version=product["version"],
    ).get()
    out(f"records.update as admin -> price {updated['price']}, version {updated['version']}")
    page = client.list("Product", user_id="u1", user_role="user").get()
    out(f"records.list as user -> total {page['total']}: {[_show(i) for i in page['items']]}")
    trail = client.history("Product", product["id"], user_id="u1", user_role="user").get()
    for audit in trail:
        out(f"records.history as user -> {audit['operation']}: {audit['changes']}")
    _measure(client, product["id"], out)


def _measure(client: RegistryClient, record_id: str, out: Callable[[str], None]) -> None:
    timings = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        client.read("Product", record_id, user_id="u1", user_role="user").get()
        timings.append((time.perf_counter() - started) * 1000)
    out(
        f"Round trip of records.read over {ROUND_TRIPS} calls: "
        f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms."
    )


def _show(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("id", "version", "name", "price") if key in record}


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


def _prepare_stores(client: RegistryClient) -> None:
    # Create the broker's and the result store's tables here, before the worker starts, so
    # two processes never race to create them in one SQLite file.
    with client.app.connection_for_write() as connection:
        for queue in ("registry", "crud"):
            connection.SimpleQueue(queue).close()
    client.app.backend.ResultSession().close()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "workers.cli", "worker", "-P", "solo", "-Q", "registry,crud",
        "-l", "warning", "-n", f"demo-{os.getpid()}@%h",
        "--", "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]
    with log.open("wb") as output:  # the banner and warnings go to the log, not the story
        return subprocess.Popen(
            command, env={**os.environ, **env, "PYTHONPATH": path},
            stdout=output, stderr=subprocess.STDOUT,
        )


def _wait_until_serving(
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


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
