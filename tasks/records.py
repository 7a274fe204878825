"""Record tasks, queue `crud`. Every result is the record as `user_role` may see it.

    records.create(model, data, user_id, user_role, idempotency_key=None)
    records.read(model, record_id, user_id, user_role)
    records.update(model, record_id, updates, user_id, user_role, expected_version=None,
                   idempotency_key=None)
    records.delete(model, record_id, user_id, user_role, expected_version=None,
                   idempotency_key=None)
    records.list(model, user_id, user_role, filters=None, order_by=None, page=1, page_size=None)
    records.history(model, record_id, user_id, user_role)
"""

from __future__ import annotations

from typing import Any

from workers.app import app

from .base import RegistryTask

__all__ = ["create", "delete", "history", "list_records", "read", "update"]


@app.task(name="records.create", base=RegistryTask, bind=True)
def create(
    self: RegistryTask,
    model: str,
    data: dict[str, Any],
    user_id: str | None,
    user_role: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    return self.registry.create(
        model, data, user_id, user_role, idempotency_key=_key(self, idempotency_key)
    )


@app.task(name="records.read", base=RegistryTask, bind=True)
def read(
    self: RegistryTask, model: str, record_id: str, user_id: str | None, user_role: str
) -> dict[str, Any]:
    return self.registry.read(model, record_id, user_id, user_role)


@app.task(name="records.update", base=RegistryTask, bind=True)
def update(
    self: RegistryTask,
    model: str,
    record_id: str,
    updates: dict[str, Any],
    user_id: str | None,
    user_role: str,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    return self.registry.update(
        model, record_id, updates, user_id, user_role,
        expected_version=expected_version, idempotency_key=_key(self, idempotency_key),
    )


@app.task(name="records.delete", base=RegistryTask, bind=True)
def delete(
    self: RegistryTask,
    model: str,
    record_id: str,
    user_id: str | None,
    user_role: str,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    return self.registry.delete(
        model, record_id, user_id, user_role,
        expected_version=expected_version, idempotency_key=_key(self, idempotency_key),
    )


@app.task(name="records.list", base=RegistryTask, bind=True)
def list_records(
    self: RegistryTask,
    model: str,
    user_id: str | None,
    user_role: str,
    filters: dict[str, Any] | None = None,
    order_by: str | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> dict[str, Any]:
    """One page: `{"items": [...], "page": ..., "page_size": ..., "total": ...}`."""
    return self.registry.list(
        model, user_id, user_role,
        filters=filters, order_by=order_by, page=page, page_size=page_size,
    )


@app.task(name="records.history", base=RegistryTask, bind=True)
def history(
    self: RegistryTask, model: str, record_id: str, user_id: str | None, user_role: str
) -> list[dict[str, Any]]:
    """A record's audit entries, oldest first, with values masked for the role."""
    entries = self.registry.history(model, record_id, user_role)
    return [entry.model_dump(mode="json") for entry in entries]


def _key(task: RegistryTask, given: str | None) -> str:
    # A producer that sends no key still gets one write per message: the task id stays the
    # same across redelivery and retries.
    return given if given is not None else f"task:{task.request.id}"
