"""What producers and workers agree on: JSON only, and where the broker and results live.

Both the worker's app (`workers.config`) and the producer client start from this, so a client
never needs worker code and the two can never disagree about serializers.
"""

from __future__ import annotations

from typing import Any

from registry.settings import CelerySettings

__all__ = ["wire_config"]


def wire_config(settings: CelerySettings) -> dict[str, Any]:
    """Celery configuration shared by every process that sends or runs the project's tasks."""
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        # Invariant 6: JSON on the wire and in the result store; pickle is never accepted.
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "broker_connection_retry_on_startup": True,
        "result_expires": settings.result_expires,
        # Flower learns a task's (redacted) arguments from the sent event.
        "task_send_sent_event": True,
    }
