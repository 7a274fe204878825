"""The worker's consumer: no message, whatever it holds, stops the worker.

Celery's consumer runs in the worker's main process; an exception that escapes its message
handler is "unrecoverable" and ends the worker, and with late acknowledgement the message comes
back to the next worker. `GuardedConsumer` (Celery's `worker_consumer` setting) therefore

- checks each task message (`workers.message_checks`) before Celery builds a request from it;
- refuses it when the check fails, when kombu cannot decode it, when Celery finds it invalid,
  or, as a last resort, when Celery's handling raises anyway;

and a refusal is always the same three steps: one log line without values, the message
rejected without requeue (so it is never redelivered), and, when the message names a task id,
the typed error stored as that task's result so its producer's `.get()` raises it at once.

Compressed messages are refused too: kombu decompresses a body while it builds the message,
before any handler runs, so a few hundred bytes could become gigabytes in this process. The
project never compresses task messages, so `refuse_compressed_messages` replaces every
decompressor kombu knows with one that refuses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery.utils.functional import noop
from celery.worker.consumer import Consumer
from kombu import compression
from kombu.exceptions import ContentDisallowed
from vine import promise

from registry.errors import MessageRefused, RegistryError

from .message_checks import (
    MessageLimits,
    check_task_message,
    clamp_time_limits,
    refusal,
    task_identity,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["GuardedConsumer", "refuse_compressed_messages"]

logger = logging.getLogger(__name__)


def refuse_compressed_messages() -> None:
    """Make kombu refuse every compressed message body in this process, before decompressing."""
    for content_type in compression.encoders():
        encoder, _ = compression.get_encoder(content_type)
        refuse = _refuse_decompression(content_type)
        compression.register(encoder, refuse, content_type)


def _refuse_decompression(content_type: str) -> Callable[[bytes], bytes]:
    def refuse(body: bytes) -> bytes:
        raise ContentDisallowed(
            f"compressed message bodies ({content_type}) are not accepted"
        )

    return refuse


class GuardedConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, refusing every message it could not handle safely."""

    def create_task_handler(self, promise: Any = promise) -> Callable[[Any], Any]:
        handle = super().create_task_handler(promise)
        limits = MessageLimits.from_settings(self.app.settings.celery)

        def on_task_received(message: Any) -> Any:
            refused = check_task_message(message, limits)
            if refused is not None:
                return self.refuse(message, refused)
            clamp_time_limits(message, limits)
            try:
                return handle(message)
            except Exception as exc:  # nothing a message holds may stop us
                return self.refuse(message, _unexpected(message, exc))

        return on_task_received

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        """kombu could not decompress or decode the message (Celery would log its body)."""
        self.refuse(message, refusal(message, _decode_failure(message, exc)))

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        """Celery found the message invalid (a malformed `eta` or `expires`, say)."""
        self.refuse(message, refusal(message, f"Celery found it invalid ({exc})"))

    def refuse(self, message: Any, error: RegistryError) -> None:
        """Log one line, reject without requeue, and answer the producer if it can be found."""
        name, task_id = task_identity(message)
        logger.warning("Refused task message %s for %s: %s", task_id, name, error.details.get(
            "reason", error.message))
        self._reject(message)
        if task_id is not None:
            self._answer(message, task_id, name, error)

    def _reject(self, message: Any) -> None:
        if getattr(message, "acknowledged", True):
            return  # not a kombu message, or Celery already settled it
        try:
            message.reject_log_error(logger, self.connection_errors, requeue=False)
        except Exception:  # a message that cannot be settled is the broker's
            logger.warning("Could not reject a refused task message.", exc_info=True)

    def _answer(self, message: Any, task_id: str, name: str | None, error: RegistryError) -> None:
        properties = getattr(message, "properties", None) or {}
        request = _AnswerRequest(
            id=task_id,
            name=name,
            reply_to=properties.get("reply_to"),
            correlation_id=properties.get("correlation_id") or task_id,
        )
        try:
            self.app.backend.mark_as_failure(task_id, error, request=request, call_errbacks=False)
        except Exception:  # a result backend outage must not stop the consumer
            logger.warning("Could not store the refusal of task %s.", task_id, exc_info=True)


class _AnswerRequest:
    """The little of a request that the result backend reads when it stores a refusal."""

    chord = None
    errbacks = None
    chain = None
    group = None
    group_index = None
    parent_id = None
    root_id = None
    ignore_result = False
    args = ()
    kwargs: dict[str, Any] = {}  # read only, never mutated
    delivery_info: dict[str, Any] = {}  # read only, never mutated
    on_ack = on_reject = staticmethod(noop)

    def __init__(self, id: str, name: str | None, reply_to: Any, correlation_id: Any) -> None:
        self.id = self.task_id = id
        self.task = self.name = name
        self.reply_to = reply_to if isinstance(reply_to, str) else None
        self.correlation_id = correlation_id if isinstance(correlation_id, str) else id


def _decode_failure(message: Any, exc: BaseException) -> str:
    if isinstance(exc, ContentDisallowed):
        return str(exc)
    headers = getattr(message, "headers", None)
    if isinstance(headers, dict) and headers.get("compression"):
        return "it is compressed; workers accept uncompressed JSON only"
    return f"its body could not be decoded ({type(exc).__name__})"


def _unexpected(message: Any, exc: BaseException) -> MessageRefused:
    logger.error("Celery could not take a task message.", exc_info=True)
    return refusal(message, f"the worker could not take it ({type(exc).__name__})")
