"""The task layer in-process: configuration, names and routes, thin tasks, errors, redaction."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from celery.backends.base import Backend
from kombu.utils.json import dumps, loads

from registry import DynamicModelRegistry
from registry.errors import ModelNotFound, PermissionDenied, ValidationFailed
from tasks.base import JSONResult
from tasks.names import QUEUES, queue_for
from tests.unit.support import run_task
from workers.app import app
from workers.config import task_routes

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

PRODUCT = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1},
                   "price": {"type": "number", "exclusiveMinimum": 0}},
    "required": ["name", "price"],
}
PERMISSIONS = {"fields": {"price": {"read_roles": ["admin", "manager"], "mask": "redact"}}}
TASK_NAMES = {
    "registry.register_model", "registry.set_permissions", "registry.get_ui_schema",
    "registry.export_form",
    "registry.list_models", "registry.purge_idempotency_keys", "records.create",
    "records.read", "records.update",
    "records.delete", "records.list", "records.history",
    # the audit pipeline (tasks/audit.py)
    "records.as_of", "audit.compact", "audit.purge", "audit.verify", "audit.stats",
    "audit.history",
}



@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    app.use_registry(registry)
    yield registry
    app.close_registry()



def test_configuration_is_json_only_and_at_least_once() -> None:
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.result_accept_content == ["json"]
    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_connection_retry_on_startup is True
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert conf.result_expires == app.settings.celery.result_expires
    assert conf.task_create_missing_queues is False
    assert {queue.name for queue in conf.task_queues} == set(QUEUES)


def test_every_task_has_its_stable_name_and_queue() -> None:
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert TASK_NAMES <= ours
    router = app.amqp.router
    for name in ours:
        route = router.route({}, name)
        assert route["queue"].name == queue_for(name), name
    assert task_routes()["records.*"] == {"queue": "crud"}
    assert queue_for("registry.list_models") == "registry"
    with pytest.raises(KeyError):
        queue_for("billing.charge")


def test_importing_the_app_opens_no_database() -> None:
    assert app._registry is None or app._registry_pid is not None
    assert "sqlalchemy.engine" not in repr(vars(app).get("_registry"))


def test_seed_scenario_through_the_tasks(registry: DynamicModelRegistry) -> None:
    entry = run_task("registry.register_model", name="Product", schema=PRODUCT,
                     permissions=PERMISSIONS, user_id="a", user_role="admin")
    assert entry["fields"] == ["name", "price"]
    created = run_task("records.create", model="Product", data={"name": "Laptop", "price": 999.99},
                  user_id="a", user_role="admin", idempotency_key="k1")
    assert created["price"] == 999.99 and created["version"] == 1
    again = run_task("records.create", model="Product", data={"name": "Laptop", "price": 999.99},
                user_id="a", user_role="admin", idempotency_key="k1")
    assert again["id"] == created["id"]
    seen = run_task("records.read", model="Product", record_id=created["id"], user_id="u",
               user_role="user")
    assert seen["price"] == "***"
    page = run_task("records.list", model="Product", user_id="u", user_role="user")
    assert page["total"] == 1 and page["items"][0]["price"] == "***"
    history = run_task("records.history", model="Product", record_id=created["id"], user_id="u",
                  user_role="user")
    assert history[0]["changes"]["price"]["new"] == "***"
    assert run_task("registry.list_models")[0]["name"] == "Product"
    ui_schema = run_task("registry.get_ui_schema", model="Product", user_role="user")
    assert ui_schema["model"] == "Product"


def test_registry_errors_are_raised_unretried(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ModelNotFound):
        run_task("records.read", model="Nope", record_id="1", user_id="u", user_role="admin")
    run_task("registry.register_model", name="Product", schema=PRODUCT, user_role="admin")
    with pytest.raises(PermissionDenied):
        run_task("records.create", model="Product", data={"name": "x", "price": 1}, user_id="u",
            user_role="user")
    with pytest.raises(ValidationFailed) as raised:
        run_task("records.create", model="Product", data={"name": "", "price": 0}, user_id="u",
            user_role="admin")
    assert {error["loc"][0] for error in raised.value.errors} == {"name", "price"}


def test_arguments_that_do_not_fit_raise_validation_failed(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ValidationFailed, match="records.create"):
        run_task("records.create", model="Product", data={})
    with pytest.raises(ValidationFailed, match="unexpected"):
        run_task("records.list", model="Product", user_id="u", user_role="admin", limit=5)


def _through_json_backend(exc: BaseException) -> BaseException:
    """What a producer gets back from a JSON result backend for `exc`."""
    backend = Backend(app, serializer="json")
    stored = loads(dumps(backend.prepare_exception(exc)))
    rebuilt: BaseException = backend.exception_to_python(stored)
    return rebuilt


def test_errors_cross_a_json_backend_with_their_details() -> None:
    sent = ValidationFailed("Record is invalid.", model="P", errors=[{"loc": ["price"]}])
    back = _through_json_backend(sent)
    assert type(back) is ValidationFailed
    assert back.errors == [{"loc": ["price"]}] and str(back) == "Record is invalid."


def test_errors_reach_a_producer_without_our_code(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = ValidationFailed("Record is invalid.", model="P", errors=[{"loc": ["price"]}])
    monkeypatch.delitem(sys.modules, "registry.errors")
    back = _through_json_backend(sent)
    assert type(back).__name__ == "ValidationFailed"
    assert back.args == ("Record is invalid.", {"model": "P", "errors": [{"loc": ["price"]}]})


def test_database_errors_hide_the_statement_and_its_values(registry: DynamicModelRegistry) -> None:
    import sqlalchemy.exc

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlalchemy.exc.IntegrityError("INSERT ... 'secret-value'", {"p": "secret-value"},
                                            Exception("constraint"))

    registry.handle = broken  # type: ignore[method-assign]
    result = app.tasks["records.create"].apply(
        kwargs={"model": "P", "data": {"p": "secret-value"}, "user_id": "u", "user_role": "admin"}
    )
    assert isinstance(result.result, RuntimeError)
    assert "secret-value" not in str(result.result)


def test_database_outages_are_retried_then_reported_cleanly(
    registry: DynamicModelRegistry,
) -> None:
    import sqlalchemy.exc

    calls = []

    def down(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("down"))

    registry.handle = down  # type: ignore[method-assign]
    task = app.tasks["records.read"]
    result = task.apply(kwargs={"model": "P", "record_id": "1", "user_id": "u",
                                "user_role": "admin"})
    # Eager runs retry in place (no countdown): every attempt, then a clean ConnectionError.
    assert len(calls) == app.settings.celery.max_retries + 1
    assert isinstance(result.result, ConnectionError)
    assert "SELECT" not in str(result.result)


def test_results_print_without_field_values() -> None:
    shown = repr(JSONResult({"id": "r1", "version": 2, "password": "hunter2", "price": 9.5}))
    assert "hunter2" not in shown and "9.5" not in shown
    assert "'id': 'r1'" in shown and "'version': 2" in shown
    page = repr(JSONResult({"items": [{"id": "r1", "ssn": "123"}], "page": 1, "page_size": 50,
                            "total": 1}))
    assert "123" not in page and "'total': 1" in page


def test_arguments_print_with_field_names_only() -> None:
    task = app.tasks["records.update"]
    shown = task.arguments_repr(
        ("Product", "r1"), {"updates": {"price": 12.5}, "user_id": "u", "user_role": "admin"}
    )
    assert "12.5" not in shown
    assert "'updates': {'price': '…'}" in shown and "'record_id': 'r1'" in shown
