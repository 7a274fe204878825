"""The producer client: names, queues, idempotency keys, redacted reprs, size limit."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from pydantic import BaseModel, Field

from registry.errors import PayloadTooLarge
from registry.settings import CelerySettings, Settings
from tasks.client import RegistryClient


class Sent:
    """Records what the client hands to Celery instead of publishing it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, name: str, **options: Any) -> Any:
        self.calls.append({"name": name, **options})
        return Celery(set_as_current=False).AsyncResult("id-1")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    return Sent()


@pytest.fixture
def client(sent: Sent) -> RegistryClient:
    app = Celery("test-client", set_as_current=False)
    app.send_task = sent  # type: ignore[method-assign]
    return RegistryClient(app, CelerySettings(max_message_bytes=4096))


class Product(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)


def test_writes_go_to_crud_with_a_fresh_idempotency_key(client: RegistryClient, sent: Sent) -> None:
    client.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    client.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    client.update("Product", "r1", {"price": 2.0}, "u", "admin", expected_version=1)
    client.delete("Product", "r1", "u", "admin", idempotency_key="mine")
    names = [call["name"] for call in sent.calls]
    assert names == ["records.create", "records.create", "records.update", "records.delete"]
    assert {call["queue"] for call in sent.calls} == {"crud"}
    keys = [call["kwargs"]["idempotency_key"] for call in sent.calls]
    assert keys[0] != keys[1] and all(keys) and keys[3] == "mine"


def test_reads_and_registry_calls_route_by_name(client: RegistryClient, sent: Sent) -> None:
    client.read("Product", "r1", "u", "user")
    client.list("Product", "u", "user", filters={"name": "a"}, page=2)
    client.register_model("Product", Product, user_role="admin")
    client.list_models()
    routed = {call["name"]: call["queue"] for call in sent.calls}
    assert routed == {"records.read": "crud", "records.list": "crud",
                      "registry.register_model": "registry", "registry.list_models": "registry"}
    assert "idempotency_key" not in sent.calls[0]["kwargs"]


def test_a_pydantic_class_is_sent_as_json_schema(client: RegistryClient, sent: Sent) -> None:
    client.register_model("Product", Product, permissions={"fields": {}}, user_role="admin")
    schema = sent.calls[0]["kwargs"]["schema"]
    assert schema["properties"]["price"]["exclusiveMinimum"] == 0
    assert sent.calls[0]["kwargs"]["operation_mode"] == "crud"


def test_flower_sees_field_names_never_values(client: RegistryClient, sent: Sent) -> None:
    client.create("Product", {"name": "Secret Name", "price": 123.45}, "u", "admin")
    client.list("Product", "u", "user", filters={"name": "Secret Name"})
    for call in sent.calls:
        assert "Secret Name" not in call["kwargsrepr"] and "123.45" not in call["kwargsrepr"]
        assert call["argsrepr"] == "()"
    assert "'data': {'name': '…', 'price': '…'}" in sent.calls[0]["kwargsrepr"]


def test_oversized_messages_never_leave_the_producer(client: RegistryClient, sent: Sent) -> None:
    with pytest.raises(PayloadTooLarge, match="limit is 4096 bytes"):
        client.create("Product", {"name": "x" * 5000, "price": 1.0}, "u", "admin")
    assert sent.calls == []


def test_from_settings_builds_a_json_only_producer() -> None:
    client = RegistryClient.from_settings(Settings())
    assert client.app.conf.accept_content == ["json"]
    assert client.app.conf.task_serializer == "json"
    assert client.app.conf.broker_url == Settings().celery.broker_url
    client.close()


def test_unanswered_calls_ask_for_no_result_and_others_do(
    client: RegistryClient, sent: Sent
) -> None:
    """An import chunk's outcome is read from its job: no result is stored or awaited."""
    client.send_unanswered("imports.chunk", job_id="j", chunk_no=0, first_row=1, rows=[["a"]])
    client.import_status("j")
    assert [(call["name"], call["queue"], call["ignore_result"]) for call in sent.calls] == [
        ("imports.chunk", "imports", True), ("imports.status", "crud", False)]
    with pytest.raises(PayloadTooLarge):
        client.send_unanswered("imports.chunk", job_id="j", chunk_no=1, first_row=2,
                               rows=[["x" * 5000]])
