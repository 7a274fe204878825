"""Invariant 2: a registration is seen by the very next task in every worker process."""

from __future__ import annotations

import re

import pytest

from tasks.client import RegistryClient

from .conftest import WorkerProcess, send_direct, unique

pytestmark = pytest.mark.integration

SCHEMA_V1 = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
    "required": ["name", "price"],
}
SCHEMA_V2 = {
    **SCHEMA_V1,
    "properties": {**SCHEMA_V1["properties"], "color": {"type": "string", "default": "none"}},
}
#: Tasks sent to each worker at once, so that both of its pool children take some.
BURST = 16
SUCCEEDED = re.compile(r"/(ForkPoolWorker-\d+)\] Task records\.create\[([0-9a-f-]+)\] succeeded")


def _children_that_ran(worker: WorkerProcess, task_ids: list[str]) -> set[str]:
    found = set()
    for line in worker.read_log().splitlines():
        match = SUCCEEDED.search(line)
        if match and match.group(2) in task_ids:
            found.add(match.group(1))
    return found


def test_registration_on_one_worker_is_seen_at_once_by_every_process(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    first, second = workers
    model = unique("Sync")
    send_direct(client, first, "registry.register_model", name=model, schema=SCHEMA_V1,
                user_role="admin").get()

    # At once, through the other worker's children, whose caches predate the model.
    created = [
        send_direct(client, second, "records.create", model=model,
                    data={"name": f"n{i}", "price": 1.0}, user_id="t", user_role="admin")
        for i in range(BURST)
    ]
    assert all(handle.get()["version"] == 1 for handle in created)

    send_direct(client, second, "registry.register_model", name=model, schema=SCHEMA_V2,
                user_role="admin").get()
    for worker in workers:
        handles = [
            send_direct(client, worker, "records.create", model=model,
                        data={"name": "x", "price": 2.0, "color": "red"},
                        user_id="t", user_role="admin")
            for _ in range(BURST)
        ]
        assert [handle.get()["color"] for handle in handles] == ["red"] * BURST
        children = _children_that_ran(worker, [handle.id for handle in handles])
        assert children == {"ForkPoolWorker-1", "ForkPoolWorker-2"}, worker.read_log()[-3000:]
