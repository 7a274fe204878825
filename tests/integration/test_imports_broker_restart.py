"""A real broker restart in the middle of an import, without touching the shared broker.

The machine's RabbitMQ serves every session's tests, so it is never restarted. This module
starts a RabbitMQ node of its own instead (its own Erlang node name, AMQP and distribution
ports, data and log directories), runs an import worker and the producer against it, and stops
and starts that node while chunks are queued: durable queues and persistent messages come back
from its data directory. The import then ends with every row once, resumed if a publish was
lost while the node was down.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from registry.settings import Settings
from tasks.client import RegistryClient
from tests.import_contract import FIELD_MAP, PERMISSIONS, Person

from .conftest import WorkerProcess, unique
from .test_imports_workers import (  # noqa: F401  (engine: a fixture)
    assert_accounted,
    count,
    engine,
    people_csv,
)

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq_server]

#: Seconds the private node may take to start.
START_TIMEOUT = 90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateBroker:
    """One RabbitMQ node of this test's own, started and stopped with `rabbitmq-server` and
    `rabbitmqctl -n NODE`."""

    def __init__(self, base: Path) -> None:
        self.node = f"dmrimp{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        base.mkdir(parents=True, exist_ok=True)
        for name in ("mnesia", "log"):
            (base / name).mkdir(exist_ok=True)
        (base / "plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        for path in base.rglob("*"):  # the server may run as the rabbitmq user
            path.chmod(0o777 if path.is_dir() else 0o666)
        base.chmod(0o777)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "plugins"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "ERL_CRASH_DUMP": str(base / "log" / "erl_crash.dump"),
        }
        self.output = base / "server.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                ["rabbitmq-server"], env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"The private RabbitMQ node did not start:\n"
                            f"{self.output.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def _accepting(self) -> bool:
        done = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "await_startup",
                               "--timeout", "5"], capture_output=True, timeout=30)
        return done.returncode == 0

    def stop(self) -> None:
        """Stop the node as an operator's restart does (its Erlang VM exits)."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "stop"], capture_output=True,
                       timeout=60)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateBroker]:
    # Not under pytest's tmp_path: its parents are private to this user, and the server may
    # run as the rabbitmq user.
    base = Path(tempfile.mkdtemp(prefix="dmr-private-rabbitmq-"))
    node = PrivateBroker(base)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def private_env(service_env: dict[str, str], broker: PrivateBroker) -> dict[str, str]:
    return {**service_env, "DMR_BROKER_URL": broker.url}


@pytest.fixture(scope="module")
def private_workers(
    private_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[WorkerProcess]]:
    logs = tmp_path_factory.mktemp("private-worker-logs")
    started = [
        WorkerProcess(f"{name}@dmrprivate", queues, private_env, logs / f"{name}.log")
        for name, queues in (("pcrud", "registry,crud"), ("pimp", "imports"))
    ]
    try:
        for worker in started:
            worker.start()
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
def private_client(private_env: dict[str, str]) -> Iterator[RegistryClient]:
    client = RegistryClient.from_settings(Settings.load(environ=private_env))
    yield client
    client.close()


@pytest.fixture
def model(private_client: RegistryClient, private_workers: list[WorkerProcess]) -> str:
    name = unique("Person")
    private_client.register_model(name, Person, permissions=PERMISSIONS,
                                  user_role="admin").get()
    return name


def test_a_real_broker_restart_mid_import_loses_and_doubles_nothing(
    broker: PrivateBroker, private_workers: list[WorkerProcess],
    private_client: RegistryClient, model: str, engine: sa.Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    rows, chunk = 20_000, 50
    source = people_csv(tmp_path / "people.csv", rows)
    arguments: dict[str, Any] = {"user_id": "l", "user_role": "admin", "field_map": FIELD_MAP,
                                 "options": {"chunk_size": chunk}}
    importer = private_workers[1]
    importer.stop()  # every chunk waits in the broker's queue first
    sent = private_client.import_records(model, source, wait=False, **arguments)
    assert sent["chunk_count"] == rows // chunk
    importer.start(concurrency=1)
    marks = "SELECT count(*) FROM dmr_import_chunks WHERE job_id = :j"
    deadline = time.monotonic() + 90
    while count(engine, marks, j=sent["job_id"]) < 3:
        assert time.monotonic() < deadline, importer.read_log()[-3000:]
        time.sleep(0.05)
    broker.stop()  # a real restart: the node's VM exits, then starts from its data directory
    written_before = count(engine, marks, j=sent["job_id"])
    broker.start()
    assert written_before < rows // chunk, "the restart came after the last chunk"

    status = wait_done(private_client, sent["job_id"])
    if status["state"] != "finished":
        # A chunk the broker did not keep: the same import run again sends only the chunks
        # that have no completion mark.
        status = private_client.import_records(model, source, timeout=180, **arguments)
    assert_accounted(engine, status, model, rows)


def wait_done(client: RegistryClient, job: str) -> dict[str, Any]:
    """The job's status once it ended or its chunks stopped being written for 5 s."""
    last, still = -1, 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.import_status(job).get(timeout=60)
        if status["state"] != "running" or (status["chunks"] == status["chunk_count"]):
            return status
        still = still + 1 if status["chunks"] == last else 0
        if still >= 10:
            return status
        last = status["chunks"]
        time.sleep(0.5)
    return client.import_status(job).get(timeout=60)
