"""Real services and real worker processes for the integration tests.

Each session gets its own PostgreSQL database and RabbitMQ virtual host, both removed at the
end; results go to Redis under task ids, which are unique. Workers are `celery -A workers.app
worker` subprocesses in their own process groups, always stopped in teardown. Two workers
serving `registry` and `crud` are shared by the whole session; tests that kill a worker start
their own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.utils.nodenames import worker_direct

from registry.settings import Settings
from tasks.client import RegistryClient, TaskHandle
from tests.conftest import create_postgres_database, drop_postgres_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RABBITMQ = ("127.0.0.1", 5672)
REDIS = ("127.0.0.1", 6379)
POSTGRES = ("127.0.0.1", 5432)
REDIS_RESULTS = os.environ.get("DMR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Seconds a worker may take to log that it is ready.
WORKER_START_TIMEOUT = 60.0


def _require(service: str, address: tuple[str, int]) -> None:
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        pytest.fail(f"{service} is not listening on {address[0]}:{address[1]}; .ci/run starts it.")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    _require("PostgreSQL", POSTGRES)
    url = create_postgres_database("dmr_test")
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this session's own, deleted with its queues afterwards."""
    _require("RabbitMQ", RABBITMQ)
    vhost = f"dmr_test_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def service_env(database_url: str, broker_url: str) -> dict[str, str]:
    """The DMR_* environment that points workers and producers at this session's services."""
    _require("Redis", REDIS)
    return {
        "DMR_SETTINGS": str(PROJECT_ROOT / "settings.toml"),
        "DMR_DATABASE_URL": database_url,
        "DMR_BROKER_URL": broker_url,
        "DMR_RESULT_BACKEND": REDIS_RESULTS,
        "DMR_CELERY__RESULT_TIMEOUT": "60",
    }


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Settings:
    return Settings.load(environ=service_env)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[RegistryClient]:
    client = RegistryClient.from_settings(settings)
    yield client
    client.close()


class WorkerProcess:
    """One `celery -A workers.app worker` subprocess, in its own process group."""

    def __init__(self, hostname: str, queues: str, env: dict[str, str], log: Path) -> None:
        self.hostname = hostname
        self.queues = queues
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, concurrency: int = 2) -> WorkerProcess:
        command = [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker",
            "-Q", self.queues, "-c", str(concurrency), "-n", self.hostname, "-l", "info",
            "--without-gossip", "--without-mingle",
        ]
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env={**os.environ, **self.env},
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready(offset)
        return self

    def _wait_ready(self, offset: int) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"Worker {self.hostname} exited at start:\n{self.read_log()}")
            if " ready." in self.read_log()[offset:]:
                return
            time.sleep(0.1)
        pytest.fail(f"Worker {self.hostname} was not ready in time:\n{self.read_log()}")

    def read_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a machine crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown, children included
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def start_worker(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """Start a worker: `start_worker(name, queues="registry,crud", concurrency=2)`."""
    started: list[WorkerProcess] = []
    logs = tmp_path_factory.mktemp("worker-logs")

    def start(name: str, queues: str = "registry,crud", concurrency: int = 2) -> WorkerProcess:
        worker = WorkerProcess(f"{name}@dmrtest", queues, service_env, logs / f"{name}.log")
        started.append(worker)
        return worker.start(concurrency)

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def workers(start_worker: object) -> tuple[WorkerProcess, WorkerProcess]:
    """Two worker processes serving `registry` and `crud`, two pool children each."""
    first = start_worker("w1")  # type: ignore[operator]
    second = start_worker("w2")  # type: ignore[operator]
    return first, second


def send_direct(
    client: RegistryClient, worker: WorkerProcess, name: str, /, **kwargs: object
) -> TaskHandle:
    """Send a task to one worker's own queue (`worker_direct`), bypassing the shared queues."""
    result = client.app.send_task(name, kwargs=kwargs, queue=worker_direct(worker.hostname))
    return TaskHandle(result, timeout=60, interval=0.01)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
