"""Is a worker serving a queue? Asked before a producer waits for a result.

A task sent to a queue nobody consumes waits out its whole result timeout; a command line
should instead say at once that no worker is there. `worker_serving` broadcasts Celery's
`active_queues` control command and returns as soon as one worker answers that it consumes
the queue, or after `timeout` seconds of silence. The broadcast needs a fanout exchange; on a
transport without one the answer is unknown (`None`), and the caller just waits for its result.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

__all__ = ["NoWorker", "worker_serving"]


class _Found(Exception):
    """Ends the reply collection at the first worker that serves the queue."""

    def __init__(self, hostname: str) -> None:
        super().__init__(hostname)
        self.hostname = hostname


class NoWorker(Exception):
    """Raised when no worker answered for the queue within the wait."""

    def __init__(self, queue: str, timeout: float) -> None:
        super().__init__(
            f"No worker serving queue {queue!r} answered within {timeout:g} s. "
            f"Start one with: dmr worker -Q {queue}"
        )
        self.queue = queue


def supports_broadcast(app: Celery) -> bool:
    """Whether the app's broker transport has the fanout exchange broadcasts need."""
    with app.connection_for_write() as connection:
        types = connection.transport.implements.exchange_type
    return "fanout" in types


def worker_serving(app: Celery, queue: str, timeout: float = 1.0) -> str | None:
    """The name of a worker that consumes `queue`, or None when the broker cannot broadcast.

    Returns at the first matching answer (one broker round trip when a worker is up).
    Raises `NoWorker` after `timeout` seconds without one.
    """
    if not supports_broadcast(app):
        return None

    def on_reply(reply: dict[str, Any]) -> None:
        for hostname, queues in reply.items():
            if any(found.get("name") == queue for found in queues or ()):
                raise _Found(hostname)

    try:
        app.control.broadcast("active_queues", reply=True, timeout=timeout, callback=on_reply)
    except _Found as found:
        return found.hostname
    raise NoWorker(queue, timeout)
