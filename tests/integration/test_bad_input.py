"""Invariants 5 and 6: each bad input gets its typed error, nothing is written, and the worker
serves the next task."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery.exceptions import NotRegistered

from registry.errors import (
    InvalidName,
    MessageRefused,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RecordNotFound,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from tasks.client import RegistryClient, TaskHandle

from .conftest import WorkerProcess, unique

pytestmark = pytest.mark.integration

PRODUCT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "price": {"type": "number", "exclusiveMinimum": 0},
        "description": {"type": "string", "default": ""},
    },
    "required": ["name", "price"],
}


@pytest.fixture(scope="module")
def product(
    client: RegistryClient, workers: tuple[WorkerProcess, WorkerProcess]
) -> Iterator[tuple[str, dict]]:
    model = unique("Bad")
    client.register_model(model, PRODUCT, user_role="admin").get()
    record = client.create(model, {"name": "ok", "price": 1.0}, "t", "admin").get()
    yield model, record


def _count(client: RegistryClient, model: str) -> int:
    return int(client.list(model, "t", "admin").get()["total"])


@pytest.fixture
def still_serving(client: RegistryClient, product: tuple[str, dict]) -> Iterator[None]:
    """After the test: nothing new was written and a good task still succeeds."""
    model, record = product
    before = _count(client, model)
    yield
    assert client.read(model, record["id"], "t", "admin").get()["name"] == "ok"
    assert _count(client, model) == before


BAD_RECORDS: list[tuple[str, Callable[[RegistryClient, str, dict], TaskHandle], type]] = [
    ("invalid value", lambda c, m, r: c.create(m, {"name": "x", "price": -1}, "t", "admin"),
     ValidationFailed),
    ("unknown field", lambda c, m, r: c.create(m, {"name": "x", "price": 1, "colour": 1}, "t",
                                               "admin"), UnknownField),
    ("unknown model", lambda c, m, r: c.create("NoSuchModel", {"name": "x"}, "t", "admin"),
     ModelNotFound),
    ("bad model name",
     lambda c, m, r: c.register_model("bad name!", PRODUCT, user_role="admin"), InvalidName),
    ("denied role", lambda c, m, r: c.create(m, {"name": "x", "price": 1}, "t", "user"),
     PermissionDenied),
    ("missing record", lambda c, m, r: c.read(m, "no-such-id", "t", "admin"), RecordNotFound),
    ("stale version", lambda c, m, r: c.update(m, r["id"], {"price": 2}, "t", "admin",
                                               expected_version=99), VersionConflict),
    ("oversized data", lambda c, m, r: c.create(m, {"name": "x", "price": 1,
                                                    "description": "d" * 1_100_000}, "t", "admin"),
     PayloadTooLarge),
    ("missing argument", lambda c, m, r: c.send("records.create", model=m, data={}),
     ValidationFailed),
]


@pytest.mark.parametrize(("case", "send", "error"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
@pytest.mark.usefixtures("still_serving")
def test_bad_input_raises_the_registry_error(
    client: RegistryClient, product: tuple[str, dict], case: str, send: Callable, error: type
) -> None:
    model, record = product
    with pytest.raises(error) as raised:
        send(client, model, record).get()
    assert type(raised.value) is error
    assert str(raised.value)


@pytest.mark.usefixtures("still_serving")
def test_validation_errors_carry_each_field(
    client: RegistryClient, product: tuple[str, dict]
) -> None:
    model, _ = product
    with pytest.raises(ValidationFailed) as raised:
        client.create(model, {"name": "", "price": 0}, "t", "admin").get()
    assert sorted(error["loc"][0] for error in raised.value.errors) == ["name", "price"]
    assert raised.value.details["model"] == model


@pytest.mark.usefixtures("still_serving")
def test_unknown_task_name_is_not_registered(client: RegistryClient) -> None:
    handle = client.send("records.explode", model="x")
    with pytest.raises(NotRegistered):
        handle.get()


@pytest.mark.usefixtures("still_serving")
def test_pickle_message_is_refused_and_answered(
    client: RegistryClient, product: tuple[str, dict]
) -> None:
    model, record = product
    result = client.app.send_task(
        "records.read", queue="crud", serializer="pickle",
        kwargs={"model": model, "record_id": record["id"], "user_id": "t", "user_role": "admin"},
    )
    with pytest.raises(MessageRefused, match="content type"):
        TaskHandle(result, timeout=30, interval=0.01).get()


def test_message_over_the_limit_is_refused_by_the_client(
    client: RegistryClient, product: tuple[str, dict]
) -> None:
    model, _ = product
    with pytest.raises(PayloadTooLarge):
        client.create(model, {"name": "x", "description": "d" * 3_000_000}, "t", "admin")


@pytest.mark.usefixtures("still_serving")
def test_message_over_the_limit_is_refused_by_the_worker(
    client: RegistryClient, product: tuple[str, dict]
) -> None:
    model, _ = product
    # A producer that skips the client's check: the worker refuses before the domain runs.
    result = client.app.send_task(
        "records.create", queue="crud",
        kwargs={"model": model, "data": {"filler": "f" * 3_000_000}, "user_id": "t",
                "user_role": "admin"},
    )
    with pytest.raises(PayloadTooLarge, match="limit is 2097152 bytes"):
        TaskHandle(result, timeout=30, interval=0.01).get()
