"""The base of every project task: the process's registry, JSON results, typed errors, retries.

A task body only decodes its JSON arguments and calls the registry; this class does the rest:

- arguments that do not fit the task's signature raise `ValidationFailed` naming the task;
- a message body over `celery.max_message_bytes` raises `PayloadTooLarge` before the domain runs;
- registry errors propagate unchanged (their `args` carry the details, so Celery's JSON result
  rebuilds them with the same class name in any producer) and are never retried, unless the
  error says it is retryable;
- database outages are retried with exponential backoff up to `celery.max_retries`, then
  reported as `ConnectionError`; any other database error is reported as `RuntimeError`; both
  without SQLAlchemy's message, which quotes the statement's parameters (record values);
- results, arguments and retried messages show Flower and the logs names, never values.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from celery import Task
from celery.utils.log import get_task_logger
from celery.worker.request import Request

from registry.errors import PayloadTooLarge, RegistryError, ValidationFailed

from .redact import arguments_repr, result_repr

if TYPE_CHECKING:
    from registry import DynamicModelRegistry

__all__ = ["DATABASE_OUTAGES", "JSONResult", "RegistryTask", "SafeReprRequest"]

#: Failures that a later attempt can get past: the database restarting, a dropped connection,
#: a full pool, SQLite's busy lock.
DATABASE_OUTAGES: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    ConnectionError,
)
_BODY_BYTES = "dmr_body_bytes"
logger = get_task_logger(__name__)


class JSONResult:
    """A task's JSON result that prints as names only.

    Celery stores `__json__()` in the result backend, but puts `repr()` into the
    task-succeeded event and the success log line: Flower must not show what a role may
    read (Invariant 4).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __json__(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return result_repr(self.value)


class SafeReprRequest(Request):  # type: ignore[misc]
    """A received message whose displayed arguments are rebuilt from its decoded arguments.

    A raw producer sends its own `kwargsrepr` (Celery's default is the full repr); the worker
    replaces it before the task-received event and the log line are made, and before the
    request travels to the pool child.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shown = self.task.arguments_repr(self.args, self.kwargs)
        self.request_dict.update(argsrepr="()", kwargsrepr=shown)
        self.request_dict[_BODY_BYTES] = len(self.body or b"")

    @property
    def argsrepr(self) -> str:
        return str(self.request_dict["argsrepr"])

    @property
    def kwargsrepr(self) -> str:
        return str(self.request_dict["kwargsrepr"])


class RegistryTask(Task):  # type: ignore[misc]
    """Base class of the project's tasks; see the module docstring."""

    Request = "tasks.base:SafeReprRequest"
    acks_late = True
    reject_on_worker_lost = True

    @property
    def registry(self) -> DynamicModelRegistry:
        """This process's registry, created after the fork (see `workers.app`)."""
        return self.app.registry  # type: ignore[no-any-return]

    def __call__(self, *args: Any, **kwargs: Any) -> JSONResult:
        self._check_arguments(args, kwargs)
        self._check_body_size()
        try:
            return JSONResult(super().__call__(*args, **kwargs))
        except RegistryError as exc:
            if exc.retryable:
                raise self._retry(exc) from None
            raise
        except DATABASE_OUTAGES as exc:
            raise self._retry(_outage(exc)) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # The full error, parameters included, stays in the operator's log only.
            logger.exception("Task %s[%s] failed in the database.", self.name, self.request.id)
            raise _database_error(exc) from None

    def arguments_repr(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The arguments as Flower and the logs may show them."""
        try:
            bound = self._signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = {**{f"arg{i}": value for i, value in enumerate(args)}, **kwargs}
        return arguments_repr(bound)

    @cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.run)

    def _check_arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            expected = ", ".join(self._signature.parameters)
            raise ValidationFailed(
                f"Task {self.name!r} cannot take these arguments ({exc}); it takes {expected}.",
                task=self.name,
                errors=[{"loc": [], "msg": str(exc), "type": "arguments"}],
            ) from None

    def _check_body_size(self) -> None:
        size = getattr(self.request, _BODY_BYTES, None) or 0
        limit = self.app.settings.celery.max_message_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"The message for {self.name!r} is {size} bytes; the limit is {limit} bytes.",
                task=self.name,
                size=size,
                limit=limit,
                errors=[],
            )

    def _retry(self, exc: BaseException) -> BaseException:
        settings = self.app.settings.celery
        countdown = min(settings.retry_backoff_max, 0.5 * 2**self.request.retries)
        shown = self.arguments_repr(tuple(self.request.args or ()), self.request.kwargs or {})
        # Past max_retries this raises `exc` itself; otherwise it returns the Retry to raise.
        retried: BaseException = self.retry(
            exc=exc,
            countdown=countdown,
            max_retries=settings.max_retries,
            throw=False,
            argsrepr="()",
            kwargsrepr=shown,
        )
        return retried


def _outage(exc: BaseException) -> ConnectionError:
    # SQLAlchemy's message holds the statement and its parameters, which may be record values.
    cause = getattr(exc, "orig", None) or exc
    return ConnectionError(
        f"The shared database could not be reached ({type(cause).__name__}); "
        "the task was retried and gave up."
    )


def _database_error(exc: BaseException) -> RuntimeError:
    cause = getattr(exc, "orig", None) or exc
    return RuntimeError(
        f"The database refused the operation ({type(cause).__name__}); nothing was written. "
        "The worker's log has the details."
    )
