"""Settings -> Celery configuration: queues, routes, delivery guarantees, events, beat.

Invariant 3 (at-least-once): late acknowledgement, reject when a worker is lost, prefetch one
message at a time. Every queue the project has is declared here and Celery may create no
other, so a misrouted task fails loudly instead of landing in a queue nobody consumes.
"""

from __future__ import annotations

from typing import Any

from kombu.entity import Exchange, Queue

from registry.settings import Settings
from tasks.names import QUEUES, TASK_QUEUES
from tasks.wire import wire_config

__all__ = ["DEFAULT_QUEUE", "beat_schedule", "celery_config", "task_queues", "task_routes"]

#: Where a task with no route goes; only names outside the contract end here, and the worker
#: answers them with `NotRegistered`.
DEFAULT_QUEUE = "crud"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The worker app's Celery configuration, from validated settings."""
    return {
        **wire_config(settings.celery),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # All queues write, so one message at a time: a lost worker loses at most one.
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.celery.worker_concurrency,
        # With late acks, a task whose connection dropped is redelivered; don't also finish it.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": True,
        "task_queues": task_queues(),
        "task_default_queue": DEFAULT_QUEUE,
        "task_create_missing_queues": False,
        "task_routes": task_routes(),
        # A queue per worker (`<hostname>.dq`) lets an operator or a test reach one worker.
        "worker_direct": True,
        "beat_schedule": beat_schedule(settings),
        "result_backend_always_retry": True,
        # No message may stop the worker: see workers.guarded_consumer.
        "worker_consumer": "workers.guarded_consumer:GuardedConsumer",
        # Every task stops within these (a producer's own limits may only be shorter).
        "task_soft_time_limit": settings.celery.task_soft_time_limit,
        "task_time_limit": settings.celery.task_time_limit,
    }


def task_queues() -> list[Queue]:
    # One direct exchange per queue, named like it, so a raw AMQP producer can find it.
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]


def task_routes() -> dict[str, dict[str, str]]:
    """Glob routes by name prefix, so a producer using the app needs no queue names."""
    return {f"{prefix}*": {"queue": queue} for prefix, queue in TASK_QUEUES.items()}


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """Periodic tasks: audit compaction and retention (queue `audit`), the purge of old
    idempotency keys and, unless `models.import_retention_days` is 0, the cleanup of ended
    import jobs (queue `registry`).

    Each message expires after one interval, so a stopped audit worker does not come back
    to a queue full of stale runs.
    """
    audit = settings.audit
    schedule = {
        "audit-compact": _every(audit.compact_interval_seconds, "audit.compact"),
        "audit-purge": _every(audit.purge_interval_seconds, "audit.purge"),
        "cqrs-project": _every(settings.cqrs.project_interval_seconds, "cqrs.project"),
        "idempotency-keys-purge": _every(
            audit.purge_interval_seconds, "registry.purge_idempotency_keys"
        ),
    }
    if settings.models.import_retention_days > 0:
        # No arguments: the retention setting applies. Upkeep as the purges are, on their clock.
        schedule["imports-cleanup"] = _every(audit.purge_interval_seconds, "imports.cleanup")
    return schedule


def _every(seconds: float, task: str) -> dict[str, Any]:
    """A beat entry running `task` every `seconds`, its message expiring after one interval."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}
