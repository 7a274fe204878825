"""A producer with none of the project's code: plain Celery, task names, JSON kwargs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tasks.client import RegistryClient

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

# Runs under `python -I` (no current directory on sys.path), and makes the project's packages
# unimportable, so Celery cannot rebuild our exception classes from them.
RAW_PRODUCER = r'''
import json, sys
for package in ("registry", "tasks", "workers"):
    sys.modules[package] = None
from celery import Celery

broker, backend, model = sys.argv[1:4]
app = Celery(broker=broker, backend=backend)
app.conf.update(accept_content=["json"], task_serializer="json", result_serializer="json")

def call(task, queue, /, **kwargs):
    try:
        return {"ok": app.send_task(task, kwargs=kwargs, queue=queue).get(timeout=60)}
    except Exception as exc:
        return {"error": type(exc).__name__, "module": type(exc).__module__,
                "args": [a if isinstance(a, (str, dict, list)) else repr(a) for a in exc.args]}

out = {}
schema = {"type": "object", "required": ["name", "price"],
          "properties": {"name": {"type": "string"}, "price": {"type": "number"}}}
permissions = {"roles": {"admin": ["create", "read", "update", "delete", "list"],
                         "user": ["read", "list"]},
               "fields": {"price": {"read_roles": ["admin", "manager"], "mask": "redact"}}}
out["register"] = call("registry.register_model", "registry", name=model, schema=schema,
                       user_id="raw", user_role="admin",
                       permissions=permissions)
out["create"] = call("records.create", "crud", model=model, data={"name": "Lamp", "price": 20.5},
                     user_id="raw", user_role="admin", idempotency_key="raw-" + model)
record_id = out["create"]["ok"]["id"]
out["read_user"] = call("records.read", "crud", model=model, record_id=record_id,
                        user_id="raw", user_role="user")
out["invalid"] = call("records.create", "crud", model=model, data={"name": "x", "price": "cheap"},
                      user_id="raw", user_role="admin")
out["denied"] = call("records.create", "crud", model=model, data={"name": "x", "price": 1},
                     user_id="raw", user_role="user")
out["missing_model"] = call("records.read", "crud", model="Nope", record_id="1",
                            user_id="raw", user_role="admin")
out["list"] = call("records.list", "crud", model=model, user_id="raw", user_role="user")
ours = ("registry", "tasks", "workers")
out["ours_loaded"] = sorted(
    m for m in sys.modules if m.split(".")[0] in ours and sys.modules[m] is not None
)
print(json.dumps(out))
'''


def test_plain_celery_producer_gets_results_and_typed_errors(
    client: RegistryClient,
    workers: tuple[WorkerProcess, WorkerProcess],
    service_env: dict[str, str],
) -> None:
    model = unique("Raw")
    run = subprocess.run(
        [sys.executable, "-I", "-c", RAW_PRODUCER, service_env["DMR_BROKER_URL"],
         service_env["DMR_RESULT_BACKEND"], model],
        capture_output=True, text=True, timeout=120, cwd="/",
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])

    assert out["ours_loaded"] == []
    assert out["register"]["ok"]["name"] == model
    created = out["create"]["ok"]
    assert (created["price"], created["version"]) == (20.5, 1)
    assert out["read_user"]["ok"]["price"] == "***"
    assert out["list"]["ok"]["total"] == 1 and out["list"]["ok"]["items"][0]["price"] == "***"

    invalid = out["invalid"]
    assert invalid["error"] == "ValidationFailed"
    message, details = invalid["args"]
    assert "price" in message and details["errors"][0]["loc"] == ["price"]
    assert out["denied"]["error"] == "PermissionDenied"
    assert out["missing_model"]["error"] == "ModelNotFound"
