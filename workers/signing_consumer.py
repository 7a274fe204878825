"""The worker's consumer when message signing is on (`[security] signing = true`).

Each task message is first held to the trust policy (`tasks.trust`): signed, by a trusted
certificate, within its signer's role ceiling. A message that fails is refused the way every
refused message is (`GuardedConsumer.refuse`: one log line, rejected without requeue, its
producer answered with the typed error), before Celery builds a request from it, so nothing of
it runs. A message that passes goes on to the guarded consumer's own checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vine import promise

from registry.errors import MessageNotTrusted
from tasks.trust import TrustPolicy

from .guarded_consumer import GuardedConsumer

__all__ = ["SigningConsumer"]

logger = logging.getLogger(__name__)


class SigningConsumer(GuardedConsumer):
    """`GuardedConsumer`, taking only messages its trust policy allows."""

    def create_task_handler(self, promise: Any = promise) -> Callable[[Any], Any]:
        handle = super().create_task_handler(promise)
        policy = TrustPolicy.for_app(self.app, self.app.settings.security)

        def on_task_received(message: Any) -> Any:
            try:
                refused = policy.refusal(message)
            except Exception:  # nothing a message holds may stop the worker
                logger.error("The trust check failed on a task message.", exc_info=True)
                refused = MessageNotTrusted(
                    "The worker refused a message whose signature it could not check. It was "
                    "dropped, not retried.",
                    reason="its signature could not be checked",
                )
            if refused is not None:
                return self.refuse(message, refused)
            return handle(message)

        return on_task_received
