"""Per-process boot: the registry after fork, and answers for messages no task can run.

- `worker_process_init`: a prefork child opens its own registry (engine, pool) before its first
  task, so the first task pays no connection cost and nothing is inherited from the parent.
- `worker_process_shutdown`: the child closes its connections.
- `PollingInterval`: polling transports (the embedded SQLite broker) poll once a second unless
  told; kombu's SQLAlchemy transport hands every transport option to `create_engine`, so the
  interval cannot travel in `broker_transport_options` and is set on the connection instead.
- `worker_init`: the worker's main process refuses compressed messages before kombu would
  decompress them (`workers.guarded_consumer`, which also answers every refused message).
  Celery already answers unknown task names with `NotRegistered`.
- `freeze_heap` (a child once its registry is open, the main process once it is ready): what
  the process holds after booting lives as long as the process, so the cyclic collector is
  told to skip it. An import chunk's message decodes to thousands of lists, which set off
  collections; each full one walked the whole booted heap (the chunk's JSON decode took 1.0
  us a row with the collector on, 0.4 with the heap frozen, 0.3 with it off, measured).
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from celery import bootsteps, signals

from .guarded_consumer import refuse_compressed_messages

if TYPE_CHECKING:
    from .app import RegistryCelery

__all__ = ["PollingInterval", "connect", "freeze_heap"]


class PollingInterval(bootsteps.StartStopStep):  # type: ignore[misc]
    """Set `celery.polling_interval` (seconds) on the consumer's broker connection."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, consumer: Any) -> None:
        transport = consumer.connection.transport
        if hasattr(transport, "polling_interval"):
            transport.polling_interval = consumer.app.settings.celery.polling_interval


def freeze_heap(**_: Any) -> None:
    """Collect what is garbage now, then keep the collector off everything left (Python's
    permanent generation): objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


def connect(app: RegistryCelery) -> None:
    """Connect the boot handlers for `app` (weak=False: they are closures)."""

    def open_registry(**_: Any) -> None:
        app.open_registry()

    def close_registry(**_: Any) -> None:
        app.close_registry()

    def guard_main_process(**_: Any) -> None:
        refuse_compressed_messages()

    app.steps["consumer"].add(PollingInterval)
    signals.worker_process_init.connect(open_registry, weak=False)
    signals.worker_process_init.connect(freeze_heap, weak=False)  # after: it holds the registry
    signals.worker_ready.connect(freeze_heap, weak=False)
    signals.worker_process_shutdown.connect(close_registry, weak=False)
    signals.worker_init.connect(guard_main_process, weak=False)

