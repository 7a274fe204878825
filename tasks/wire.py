"""What producers and workers agree on: JSON only, and where the broker and results live.

Both the worker's app (`workers.config`) and the producer client start from this, so a client
never needs worker code and the two can never disagree about serializers.
"""

from __future__ import annotations

from typing import Any

from registry.settings import CelerySettings

from .file_broker import TRANSPORT_PATH as FILE_TRANSPORT
from .file_broker import is_file_broker
from .file_broker import transport_options as file_transport_options

__all__ = ["wire_config"]


def wire_config(settings: CelerySettings) -> dict[str, Any]:
    """Celery configuration shared by every process that sends or runs the project's tasks."""
    return {
        **_broker_options(settings),
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


def _broker_options(settings: CelerySettings) -> dict[str, Any]:
    # Redis has no acknowledgements of its own: kombu keeps taken messages aside and puts them
    # back once they are older than the visibility timeout (Celery's default is an hour). It
    # looks for such messages only every interval x throttle seconds (100 by default), so a
    # dead worker's messages would wait that long on top; look a few times per timeout, at
    # most every 10 s. Other transports take no such options (the SQLAlchemy one would pass
    # them to its engine).
    if is_file_broker(settings.broker_url):  # the embedded default: tasks/file_broker.py
        return {
            "broker_transport": FILE_TRANSPORT,
            "broker_transport_options": file_transport_options(
                settings.broker_url, settings.visibility_timeout, settings.polling_interval
            ),
        }
    if settings.broker_url.split(":", 1)[0] not in ("redis", "rediss"):
        return {}
    timeout = settings.visibility_timeout
    return {
        "broker_transport_options": {
            "visibility_timeout": timeout,
            "unacked_restore_interval": max(1, min(10, round(timeout / 3))),
            "unacked_restore_throttle": 1,
        }
    }
