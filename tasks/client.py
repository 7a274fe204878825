"""The producer client: the registry's operations as Celery tasks, from any process.

    client = RegistryClient.from_settings()
    product = client.create("Product", {"name": "Widget", "price": 9.99},
                            user_id="u1", user_role="admin").get()

Every method sends one task by its stable name to its queue and returns a `TaskHandle`;
`.get()` returns the JSON result or raises the registry's error (`ValidationFailed` with
`.errors`, `PermissionDenied`, `ModelNotFound`, `RecordNotFound`, `VersionConflict`, ...).
Writes get an idempotency key when the caller gives none, so a redelivered or retried message
writes once. Arguments are sent with a redacted `kwargsrepr`: Flower shows field names, never
values. The client needs no worker code and no database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult
from pydantic import BaseModel

from registry.errors import PayloadTooLarge
from registry.operations import (
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    Operation,
    RecordHistory,
    UpdateRecord,
)
from registry.schema import model_to_schema
from registry.settings import CelerySettings, Settings

from .cqrs_client import CqrsClientMethods
from .import_client import ImportMethods
from .message_size import json_size
from .names import queue_for
from .redact import arguments_repr
from .trust import enable_signing
from .wire import wire_config

__all__ = ["RegistryClient", "TaskHandle"]


class TaskHandle:
    """A sent task. `get()` waits for its result, polling at the configured interval."""

    def __init__(
        self,
        result: AsyncResult,
        *,
        timeout: float,
        interval: float,
        resend: Callable[[], TaskHandle] | None = None,
    ) -> None:
        self.result = result
        self.timeout = timeout
        self.interval = interval
        self._resend = resend

    def resend(self) -> TaskHandle:
        """Send the same task with the same arguments again, as a new message.

        For a `.get()` that timed out: a write carries the same idempotency key, so it still
        happens once. (A Redis broker can lose a message whose worker is killed at the instant
        it takes it; RabbitMQ cannot.)"""
        if self._resend is None:
            raise RuntimeError("This handle was not made by RegistryClient.send().")
        return self._resend()

    @property
    def id(self) -> str:
        return str(self.result.id)

    def ready(self) -> bool:
        return bool(self.result.ready())

    def get(self, timeout: float | None = None) -> Any:
        """The task's JSON result; raises the task's error, or Celery's `TimeoutError` when
        none came within `timeout` seconds of wall-clock time."""
        limit = self.timeout if timeout is None else timeout
        if not getattr(self.result.backend, "is_async", False):
            # A polling backend (SQLite, PostgreSQL results) counts only its sleeps toward
            # the timeout, not the queries between them: wait by the clock here instead.
            deadline = time.monotonic() + limit
            while not self.result.ready():
                if time.monotonic() >= deadline:
                    raise ResultTimeout(f"No result within {limit:g} s.")
                time.sleep(self.interval)
        return self.result.get(
            timeout=limit, interval=self.interval, disable_sync_subtasks=False
        )

    def __repr__(self) -> str:
        return f"<TaskHandle {self.result.task_name or ''} {self.id}>"


class RegistryClient(CqrsClientMethods, ImportMethods):
    """Send the registry's operations as tasks; see the module docstring."""

    def __init__(self, app: Celery, settings: CelerySettings | None = None) -> None:
        self.app = app
        self.settings = settings or CelerySettings()
        self._sent = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RegistryClient:
        """A client with its own producer app (`Settings.load()` when none are given)."""
        settings = settings or Settings.load()
        app = Celery("dmr-client", set_as_current=False)
        app.config_from_object(wire_config(settings.celery))
        if settings.security.signing:
            enable_signing(app, settings.security)
        return cls(app, settings.celery)

    def close(self) -> None:
        """Close the broker and result backend connections this client opened."""
        if not self._sent:  # no result was ever asked for: don't open a backend to close it
            self.app.close()
            return
        backend = self.app.backend
        consumer = getattr(backend, "result_consumer", None)
        if consumer is not None and hasattr(consumer, "stop"):
            consumer.stop()  # the Redis backend's pub/sub connection
        pool = getattr(getattr(backend, "client", None), "connection_pool", None)
        if pool is not None:
            pool.disconnect()
        self.app.close()

    # -- models -------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model: type[BaseModel] | Mapping[str, Any],
        operation_mode: str = "crud",
        permissions: Mapping[str, Any] | None = None,
        force: bool = False,
        *,
        user_id: str | None = None,
        user_role: str,
    ) -> TaskHandle:
        """Register a Pydantic class or a JSON Schema under `name`, as a role with the
        management permission (`models.manager_roles`)."""
        schema = model_to_schema(model, name) if isinstance(model, type) else dict(model)
        return self.send(
            "registry.register_model",
            name=name, schema=schema, operation_mode=operation_mode,
            permissions=_plain(permissions), force=force, user_id=user_id, user_role=user_role,
        )

    def set_permissions(
        self, model: str, permissions: Mapping[str, Any], *, user_id: str | None = None,
        user_role: str,
    ) -> TaskHandle:
        return self.send("registry.set_permissions", model=model, permissions=dict(permissions),
                         user_id=user_id, user_role=user_role)

    def get_ui_schema(self, model: str, user_role: str) -> TaskHandle:
        return self.send("registry.get_ui_schema", model=model, user_role=user_role)

    def list_models(self) -> TaskHandle:
        return self.send("registry.list_models")

    # -- records: each builds its operation (registry/operations.py) and sends it ------------

    def create(
        self,
        model: str,
        data: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        return self.send_operation("records.create", CreateRecord.build(
            model=model, data=data, user_id=user_id, user_role=user_role,
            idempotency_key=idempotency_key or _new_key(),
        ))

    def read(self, model: str, record_id: str, user_id: str | None, user_role: str) -> TaskHandle:
        return self.send_operation("records.read", GetRecord.build(
            model=model, record_id=record_id, user_id=user_id, user_role=user_role,
        ))

    def update(
        self,
        model: str,
        record_id: str,
        updates: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        return self.send_operation("records.update", UpdateRecord.build(
            model=model, record_id=record_id, updates=updates, user_id=user_id,
            user_role=user_role, expected_version=expected_version,
            idempotency_key=idempotency_key or _new_key(),
        ))

    def delete(
        self,
        model: str,
        record_id: str,
        user_id: str | None,
        user_role: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        return self.send_operation("records.delete", DeleteRecord.build(
            model=model, record_id=record_id, user_id=user_id, user_role=user_role,
            expected_version=expected_version, idempotency_key=idempotency_key or _new_key(),
        ))

    def list(
        self,
        model: str,
        user_id: str | None,
        user_role: str,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int | None = None,
        after: str | None = None,
        count: str | None = None,
    ) -> TaskHandle:
        """One page; `filters`, `after` (a page's `next_cursor`) and `count` as README's
        "Listing at scale" says."""
        return self.send_operation("records.list", ListRecords.build(
            model=model, user_id=user_id, user_role=user_role, filters=filters,
            order_by=order_by, page=page, page_size=page_size, after=after, count=count,
        ))

    def history(
        self, model: str, record_id: str, user_id: str | None, user_role: str
    ) -> TaskHandle:
        return self.send_operation("records.history", RecordHistory.build(
            model=model, record_id=record_id, user_id=user_id, user_role=user_role,
        ))

    def send_operation(self, name: str, operation: Operation) -> TaskHandle:
        """Send an operation as task `name`'s JSON arguments. The operation checked its
        arguments when it was made, so a malformed call fails here, before anything is sent."""
        return self.send(name, **operation.wire_arguments())

    # -- sending ------------------------------------------------------------------------

    def send(self, name: str, /, **kwargs: Any) -> TaskHandle:
        """Send task `name` with JSON keyword arguments to its queue.

        Raises `PayloadTooLarge` before sending when the message would exceed
        `celery.max_message_bytes`.
        """
        result = self._publish(name, kwargs, ignore_result=False)
        return TaskHandle(
            result,
            timeout=self.settings.result_timeout,
            interval=self.settings.polling_interval,
            resend=lambda: self.send(name, **kwargs),
        )

    def send_unanswered(self, name: str, /, **kwargs: Any) -> None:
        """Send task `name` as `send` does, with no result stored and none awaited: for
        calls whose outcome is read elsewhere (an import chunk's, from its job's status), so
        neither the worker stores a result nor this client subscribes to one per call."""
        self._publish(name, kwargs, ignore_result=True)

    def _publish(self, name: str, kwargs: dict[str, Any], *, ignore_result: bool) -> Any:
        self._check_size(name, kwargs)
        self._sent = True
        return self.app.send_task(
            name,
            kwargs=kwargs,
            queue=queue_for(name),
            argsrepr="()",
            kwargsrepr=arguments_repr(kwargs),
            ignore_result=ignore_result,
        )

    def _check_size(self, name: str, kwargs: Mapping[str, Any]) -> None:
        size = json_size(kwargs)
        limit = self.settings.max_message_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"The message for {name!r} would be {size} bytes; the limit is {limit} bytes.",
                task=name,
                size=size,
                limit=limit,
                errors=[],
            )


def _new_key() -> str:
    return str(uuid.uuid4())


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)
