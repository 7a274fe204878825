"""Message signing through real workers on RabbitMQ.

Signing on: a worker with `[security] signing = true` on a virtual host of its own, services
issued keys the README's way (self-signed certificates, made here with `cryptography`). A
signed producer within its ceiling gets its results through `RegistryClient`; an unsigned
message, one signed by an untrusted certificate, one changed after signing, one claiming a role
over its signer's ceiling and one changing models without the right are each refused with
`MessageNotTrusted`, and nothing is written. Signing off: the session's workers take JSON and
refuse a signed message they cannot read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from celery.result import AsyncResult
from kombu import Connection, Exchange
from pydantic import BaseModel

from registry import DynamicModelRegistry
from registry.errors import MessageNotTrusted, MessageRefused
from registry.tables import audit_outbox
from tasks.client import RegistryClient
from tasks.trust import AUTH_CONTENT_TYPE
from tests.signing_support import Identity, json_body, make_identity, tampered

from .conftest import PROJECT_ROOT, WorkerProcess, _rabbitmqctl

pytestmark = pytest.mark.integration

PRODUCERS = {
    "dmr-worker": {"roles": ["*"], "manage_models": True},
    "ops-admin": {"roles": ["admin", "user"], "manage_models": True},
    "crm": {"roles": ["user"]},
}
#: A producer with the project's client, as a service would run it.
SIGNED_CLIENT = r"""
import json, sys
from registry.settings import Settings
from tasks.client import RegistryClient

model, role, data = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = RegistryClient.from_settings(Settings.load())
try:
    created = client.create(model, data, user_id="svc", user_role=role).get(timeout=60)
    read = client.read(model, created["id"], user_id="svc", user_role="user").get(timeout=60)
    print(json.dumps({"created": created, "read": read}))
finally:
    client.close()
"""


class Product(BaseModel):
    name: str
    price: float


@dataclass
class SignedStack:
    """A signing worker on its own virtual host, its services' identities, and the model."""

    env: dict[str, str]
    identities: dict[str, Identity]
    model: str
    registry: DynamicModelRegistry
    results: Celery

    def publish(self, name: str, body: bytes, content_type: str = AUTH_CONTENT_TYPE) -> str:
        """Publish a raw task message to the task's queue; returns its task id."""
        task_id = str(uuid.uuid4())
        queue = "registry" if name.startswith("registry.") else "crud"
        headers = {"lang": "py", "task": name, "id": task_id, "root_id": task_id,
                   "retries": 0, "argsrepr": "()", "kwargsrepr": "{}"}
        with Connection(self.env["DMR_BROKER_URL"]) as connection:
            connection.Producer().publish(
                body, exchange=Exchange(queue, type="direct"), routing_key=queue,
                content_type=content_type, content_encoding="utf-8", headers=headers,
                correlation_id=task_id, retry=True,
            )
        return task_id

    def outcome(self, task_id: str) -> Any:
        return AsyncResult(task_id, app=self.results).get(timeout=60, propagate=False)

    def written(self) -> tuple[int, int]:
        """Rows of the model and audit entries about it."""
        table = self.registry.model_info(self.model).records.table
        outbox = sa.select(sa.func.count()).where(audit_outbox.c.model == self.model)
        with self.registry.database.read() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            return int(rows), int(conn.execute(outbox).scalar_one())

    def client_env(self, identity: str) -> dict[str, str]:
        found = self.identities[identity]
        return {**self.env, "DMR_SECURITY__KEY": str(found.key),
                "DMR_SECURITY__CERTIFICATE": str(found.certificate)}


@pytest.fixture(scope="module")
def stack(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignedStack]:
    root = tmp_path_factory.mktemp("signing")
    store = root / "trusted"
    identities = {name: make_identity(root, name, store=store) for name in PRODUCERS}
    identities["rogue"] = make_identity(root / "untrusted", "crm")
    vhost = f"dmr_signing_{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = {
        **service_env,
        "DMR_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "DMR_SECURITY__SIGNING": "true",
        "DMR_SECURITY__KEY": str(identities["dmr-worker"].key),
        "DMR_SECURITY__CERTIFICATE": str(identities["dmr-worker"].certificate),
        "DMR_SECURITY__CERT_STORE": str(store),
        "DMR_SECURITY__PRODUCERS": json.dumps(PRODUCERS),
    }
    registry = DynamicModelRegistry(service_env["DMR_DATABASE_URL"])
    model = f"Signed{uuid.uuid4().hex[:8]}"
    registry.register_model(model, Product)
    results = Celery(backend=service_env["DMR_RESULT_BACKEND"], set_as_current=False)
    results.conf.result_accept_content = ["json"]
    worker = WorkerProcess("signing@dmrtest", "registry,crud", env, root / "worker.log")
    try:
        worker.start(concurrency=1)
        yield SignedStack(env, identities, model, registry, results)
    finally:
        worker.stop()
        registry.close()
        results.close()
        _rabbitmqctl("delete_vhost", vhost)


def test_a_signed_producer_within_its_ceiling_gets_its_results(stack: SignedStack) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SIGNED_CLIENT, stack.model, "admin",
         json.dumps({"name": "Lamp", "price": 20.5})],
        env=stack.client_env("ops-admin"), cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["created"]["name"] == "Lamp" and out["read"]["id"] == out["created"]["id"]
    assert stack.written()[0] >= 1


def create_as(role: str, model: str) -> list[Any]:
    return [[], {"model": model, "data": {"name": "Forged", "price": 1.0}, "user_id": "x",
                 "user_role": role}, {}]


def test_untrusted_messages_are_refused_and_write_nothing(stack: SignedStack) -> None:
    crm, rogue = stack.identities["crm"], stack.identities["rogue"]
    before = stack.written()
    honest = crm.sign(create_as("user", stack.model))
    cases = {
        "not signed": stack.publish(
            "records.create", json_body(create_as("admin", stack.model)), "application/json"),
        "does not trust": stack.publish(
            "records.create", rogue.sign(create_as("admin", stack.model))),
        "signature does not verify": stack.publish(
            "records.create", tampered(honest, b'"user_role": "user"', b'"user_role": "admin"')),
        "may not claim role 'admin'": stack.publish(
            "records.create", crm.sign(create_as("admin", stack.model))),
        "may not change models or permissions": stack.publish(
            "registry.set_permissions",
            crm.sign([[], {"model": stack.model, "permissions": {}, "user_role": "user"}, {}])),
    }
    for reason, task_id in cases.items():
        refused = stack.outcome(task_id)
        assert isinstance(refused, MessageNotTrusted), (reason, refused)
        assert reason in refused.details["reason"]
    assert stack.written() == before
    listed = stack.outcome(stack.publish("records.list", crm.sign(
        [[], {"model": stack.model, "user_id": "crm", "user_role": "user"}, {}])))
    assert isinstance(listed, dict) and "items" in listed  # the worker goes on


def test_without_signing_a_worker_takes_json_and_refuses_what_it_cannot_read(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess],
    stack: SignedStack,
) -> None:
    assert isinstance(client.list_models().get(timeout=60), list)
    signed = stack.identities["ops-admin"].sign([[], {}, {}])
    task_id = str(uuid.uuid4())
    with Connection(client.app.conf.broker_url) as connection:
        connection.Producer().publish(
            signed, exchange=Exchange("C.dq2", type="direct"), routing_key=workers[0].hostname,
            content_type=AUTH_CONTENT_TYPE, content_encoding="utf-8",
            headers={"lang": "py", "task": "registry.list_models", "id": task_id,
                     "root_id": task_id},
            correlation_id=task_id, retry=True,
        )
    refused = AsyncResult(task_id, app=stack.results).get(timeout=60, propagate=False)
    assert isinstance(refused, MessageRefused) and not isinstance(refused, MessageNotTrusted)
