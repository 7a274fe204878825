"""Flower: our named tasks appear, and no password or masked value ever does (Invariant 4)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from tasks.client import RegistryClient, TaskHandle

from .conftest import PROJECT_ROOT, WorkerProcess, unique

pytestmark = pytest.mark.integration

FLOWER_START_TIMEOUT = 60.0
FINISHED = ("SUCCESS", "FAILURE")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Flower:
    def __init__(self, port: int, auth: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.header = "Basic " + base64.b64encode(auth.encode()).decode()

    def get(self, path: str, authorised: bool = True) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if authorised:
            request.add_header("Authorization", self.header)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture(scope="module")
def flower(
    service_env: dict[str, str],
    workers: tuple[WorkerProcess, WorkerProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flower]:
    port, password = _free_port(), f"pw-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **service_env, "DMR_FLOWER__PORT": str(port),
           "DMR_FLOWER__BASIC_AUTH": f"watcher:{password}"}
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "flower"], cwd=PROJECT_ROOT, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    ui = Flower(port, f"watcher:{password}")
    try:
        _wait_for_workers(ui, process, workers, log)
        yield ui
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_for_workers(
    ui: Flower, process: subprocess.Popen[bytes], workers: tuple[WorkerProcess, ...], log: Any
) -> None:
    deadline = time.monotonic() + FLOWER_START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            status, body = ui.get("/api/workers?refresh=1")
        except OSError:
            status, body = 0, ""
        if status == 200 and all(w.hostname in body for w in workers):
            return
        time.sleep(0.5)
    pytest.fail(f"Flower did not see the workers:\n{log.read_text()}")


def _wait_for_tasks(ui: Flower, handles: list[TaskHandle]) -> dict[str, Any]:
    wanted = {handle.id for handle in handles}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = ui.json("/api/tasks")
        finished = {tid for tid, task in tasks.items() if task.get("state") in FINISHED}
        if wanted <= finished:
            return tasks
        time.sleep(0.3)
    pytest.fail(f"Flower did not record every task: missing {wanted - set(ui.json('/api/tasks'))}")


def test_flower_requires_basic_auth(flower: Flower) -> None:
    status, _ = flower.get("/api/workers", authorised=False)
    assert status == 401


def test_flower_shows_our_tasks_but_no_secret_value(
    flower: Flower, client: RegistryClient, service_env: dict[str, str]
) -> None:
    model, password, price = unique("Vault"), f"hunter-{uuid.uuid4().hex}", 7131.4159
    schema = {"type": "object", "required": ["username", "password", "price"],
              "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                             "price": {"type": "number"}}}
    permissions = {"fields": {"password": {"read_roles": ["admin"], "mask": "redact"},
                              "price": {"read_roles": ["admin", "manager"], "mask": "redact"}}}
    client.register_model(model, schema, permissions=permissions, user_role="admin").get()
    data = {"username": "ann", "password": password, "price": price}
    handles = [client.create(model, data, "t", "admin")]
    record = handles[0].get()
    handles += [
        client.read(model, record["id"], "t", "admin"),  # the admin's result holds the values
        client.list(model, "t", "admin", filters={"username": "ann"}),
        client.update(model, record["id"], {"password": password + "2"}, "t", "admin"),
        client.create(model, {**data, "price": -1}, "t", "admin"),  # fails validation
    ]
    # A producer with no kwargsrepr of its own: the worker redacts what it reports.
    raw = Celery(broker=service_env["DMR_BROKER_URL"], backend=service_env["DMR_RESULT_BACKEND"])
    raw.conf.update(accept_content=["json"], task_serializer="json", result_serializer="json")
    handles.append(TaskHandle(raw.send_task(
        "records.create", queue="crud",
        kwargs={"model": model, "data": data, "user_id": "raw", "user_role": "admin"},
    ), timeout=60, interval=0.01))
    for handle in handles:
        try:
            handle.get()
        except Exception:
            pass
    raw.close()

    tasks = _wait_for_tasks(flower, handles)
    names = {tasks[handle.id]["name"] for handle in handles}
    assert {"records.create", "records.read", "records.list", "records.update"} <= names
    workers = flower.json("/api/workers")
    registered = {name for info in workers.values() for name in info.get("registered", [])}
    assert {"records.create", "registry.register_model"} <= registered

    pages = [flower.get("/api/tasks")[1], flower.get("/api/workers")[1]]
    pages += [flower.get(f"/api/task/info/{handle.id}")[1] for handle in handles]
    pages += [flower.get("/tasks")[1], flower.get("/")[1]]
    for page in pages:
        assert password not in page
        assert str(price) not in page
    shown = flower.json(f"/api/task/info/{handles[0].id}")
    assert "'password': '…'" in shown["kwargs"]
