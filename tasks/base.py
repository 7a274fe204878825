"""The base of every project task: the process's registry, JSON results, typed errors, retries.

A task body only decodes its JSON arguments and calls the registry; this class does the rest:

- arguments that do not fit the task's signature raise `ValidationFailed` naming the task;
- a message body over `celery.max_message_bytes` raises `PayloadTooLarge` before the domain runs;
- registry errors propagate unchanged (their `args` carry the details, so Celery's JSON result
  rebuilds them with the same class name in any producer) and are never retried, unless the
  error says it is retryable;
- database outages (`registry.database_errors.is_outage`: connection failures and passing
  contention, never a permanent refusal) are retried with exponential backoff up to
  `celery.max_retries`, then reported as `ConnectionError`; a database limit (too many columns,
  a row too big) is `DatabaseLimitExceeded` at once; any other database error is reported as
  `RuntimeError`; all without SQLAlchemy's message, which quotes the statement's parameters
  (record values);
- results, arguments and retried messages show Flower and the logs names, never values;
- errors that are the caller's fault (`RegistryError.expected`) are Celery's `throws`: logged as
  one INFO line, without a traceback; real faults keep theirs;
- a task past its soft time limit stops with `TaskTimeLimitExceeded` (its transaction rolls
  back); past its hard limit its pool child is killed and the producer gets the same error.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.utils.log import get_task_logger
from celery.worker import state as worker_state
from celery.worker.request import Request

from registry.database_errors import database_limit_error, is_outage
from registry.errors import (
    PayloadTooLarge,
    RegistryError,
    TaskTimeLimitExceeded,
    ValidationFailed,
    expected_errors,
)

from .redact import arguments_repr, result_repr

if TYPE_CHECKING:
    from registry import DynamicModelRegistry

__all__ = ["JSONResult", "RegistryTask", "SafeReprRequest"]

_BODY_BYTES = "dmr_body_bytes"
#: What a pool child takes from the message body itself, not from the request it is sent.
_DECODED = frozenset({"args", "kwargs"})
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
        self._request_dict.update(argsrepr="()", kwargsrepr=shown)
        self._request_dict[_BODY_BYTES] = len(self.body or b"")

    @property
    def request_dict(self) -> dict[str, Any]:
        """The request sent to the pool child, without the decoded arguments Celery keeps in
        it: the child decodes the body again and replaces them, so they were pickled, piped
        and unpickled for nothing (for an import chunk, two fifths of the Celery cost of its
        rows, measured). Celery reads this property only to send the request and its
        `retries`; everything else here reads the whole request."""
        whole: dict[str, Any] = self._request_dict
        return {key: value for key, value in whole.items() if key not in _DECODED}

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft:
            self._answer_hard_time_limit(timeout)
        super().on_timeout(soft, timeout)

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        if isinstance(exc, TimeLimitExceeded):
            limit = exc.args[0] if exc.args else self.task.app.settings.celery.task_time_limit
            self._answer_hard_time_limit(limit)
        super().on_failure(exc_info, send_failed_event, return_ok)

    def _answer_hard_time_limit(self, timeout: float) -> None:
        """Store `TaskTimeLimitExceeded` as the result, and keep Celery from storing its own
        `TimeLimitExceeded` (not a registry error) over it.

        Celery reports a hard time limit twice, as a failure of the job and as a timeout, in
        either order; the first one answers.
        """
        if getattr(self, "_hard_timed_out", False) or worker_state.should_terminate:
            return
        self._hard_timed_out = True
        error = _time_limit_error(self.name, float(timeout), hard=True)
        self.task.backend.mark_as_failure(
            self.id, error, request=self._context, call_errbacks=False
        )

    @property
    def store_errors(self) -> bool:
        if getattr(self, "_hard_timed_out", False):
            return False
        return bool(super().store_errors)

    @property
    def argsrepr(self) -> str:
        return str(self._request_dict["argsrepr"])

    @property
    def kwargsrepr(self) -> str:
        return str(self._request_dict["kwargsrepr"])


class RegistryTask(Task):  # type: ignore[misc]
    """Base class of the project's tasks; see the module docstring."""

    Request = "tasks.base:SafeReprRequest"
    acks_late = True
    reject_on_worker_lost = True
    throws = expected_errors()

    @property
    def registry(self) -> DynamicModelRegistry:
        """This process's registry, created after the fork (see `workers.app`)."""
        return self.app.registry  # type: ignore[no-any-return]

    def __call__(self, *args: Any, **kwargs: Any) -> JSONResult:
        self._check_arguments(args, kwargs)
        self._check_body_size()
        try:
            return JSONResult(super().__call__(*args, **kwargs))
        except Exception as exc:
            if _stopped_by_soft_time_limit(exc):
                limit = self.app.settings.celery.task_soft_time_limit
                raise _time_limit_error(self.name, limit, hard=False) from None
            classified = self._classified(exc)
            if classified is exc:
                raise
            raise classified from None

    def _classified(self, exc: Exception) -> BaseException:
        """What a failed task raises instead of `exc`: registry errors as they are (or their
        retry), outages retried, other database errors without their statement."""
        if isinstance(exc, RegistryError):
            return self._retry(exc) if exc.retryable else exc
        if is_outage(exc):
            return self._retry(_outage(exc))
        limit = database_limit_error(exc)
        if limit is not None:
            return limit
        if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
            # The full error, parameters included, stays in the operator's log only.
            logger.error(
                "Task %s[%s] failed in the database.", self.name, self.request.id, exc_info=exc
            )
            return _database_error(exc)
        return exc

    def arguments_repr(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The arguments as Flower and the logs may show them, in the order they were sent.
        Runs in the worker's main process for every message; producers send keywords only,
        which need no binding to name them."""
        if not args:
            return arguments_repr(kwargs)
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


def _stopped_by_soft_time_limit(exc: BaseException) -> bool:
    """Whether the soft time limit interrupted the task: the exception itself, or what it
    was raised while handling (a rollback that fails because the limit cut a query short)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SoftTimeLimitExceeded):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _time_limit_error(name: str, seconds: float, *, hard: bool) -> TaskTimeLimitExceeded:
    what = "its worker process was stopped" if hard else "it was stopped"
    return TaskTimeLimitExceeded(
        f"Task {name!r} ran longer than its {'hard' if hard else 'soft'} time limit of "
        f"{seconds:g} s; {what}, and a transaction it had open was rolled back.",
        task=name,
        limit_seconds=seconds,
        hard=hard,
    )


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
