"""Audit tasks on queue `audit` (its own worker, concurrency 1), and `records.as_of` on `crud`.

    audit.compact(force=False)   -> {"blocks", "entries"} written
    audit.purge()                -> {"blocks", "entries", "anchor_hash"} dropped by retention
    audit.verify()               -> {"ok": true, "signers", ...} or {"ok": false, "block_id" |
                                    "pending_seq" | "seq" | "record" (+ "field"), "reason"}
    audit.stats(model=None)      -> {"entries", "blocks", "pending", "raw_bytes", "stored_bytes"}
    audit.history(model, record_id=None, user_id=None, *, user_role, since=None,
                  until=None, actor=None)          -> {"entries": [...]}, masked for the role
    records.as_of(model, record_id, at, user_id, user_role)  -> the record as it was at `at`

Times are ISO 8601 strings; one without an offset is UTC.

Beat runs `audit.compact` every `audit.compact_interval_seconds` and `audit.purge` every
`audit.purge_interval_seconds` (workers/config.py). Between those runs, a burst of writes
should not wait for the schedule, but the write path is the domain, which may not enqueue
tasks. So a `task_postrun` handler here counts successful `records.*` tasks in each worker
process and, every `audit.threshold_check_every` of them, asks the database whether at least
`audit.compact_threshold` entries are pending (a bounded index read); if so it enqueues
`audit.compact`, at most once a second per process, with a short expiry. Duplicates from
several processes are harmless: compactions are serialised by the chain lock, and one that
finds too little to do returns at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from celery import signals

from registry.errors import ValidationFailed
from registry.operations import RecordAsOf, RecordHistory, check_text
from workers.app import app

from .base import RegistryTask
from .operations import operation_task, registry_task
from .records import entries_as_json
from .throttle import Throttle

__all__ = ["CompactionTrigger", "as_of", "compact", "history", "purge", "stats", "verify"]

#: Seconds a threshold-triggered compaction message stays valid in the queue.
TRIGGER_EXPIRES = 30.0


@registry_task("audit.compact")
def compact(self: RegistryTask, force: bool = False) -> dict[str, int]:
    if not isinstance(force, bool):  # "false" from a raw producer would be true
        raise ValidationFailed(
            f"Argument 'force' must be true or false, not {force!r}.",
            errors=[{"loc": ["force"], "msg": "must be a boolean", "type": "bool"}],
        )
    return self.registry.audit_logger.compact(force=force)


@registry_task("audit.purge")
def purge(self: RegistryTask) -> dict[str, Any]:
    return self.registry.audit_logger.purge()


@registry_task("audit.verify")
def verify(self: RegistryTask) -> dict[str, Any]:
    return self.registry.verify_audit()


@registry_task("audit.stats")
def stats(self: RegistryTask, model: str | None = None) -> dict[str, int]:
    check_text("model", model, required=False)
    return self.registry.audit_logger.stats(model)


#: Audit entries of a model or one record, masked for the role: `{"entries": [...]}`.
history = operation_task(
    "audit.history", RecordHistory, answer=lambda found: {"entries": entries_as_json(found)}
)
#: The record as it was at `at`, rebuilt from its audit history.
as_of = operation_task("records.as_of", RecordAsOf)


class CompactionTrigger:
    """The `task_postrun` handler described in the module docstring."""

    def __init__(
        self,
        pending_at_least: Callable[[int], bool],
        send: Callable[[], Any],
        *,
        every: int,
        threshold: int,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pending_at_least = pending_at_least
        self.send = send
        self.every = every
        self.threshold = threshold
        self.throttle = Throttle(min_interval, clock)
        self._count = 0
        self._lock = threading.Lock()  # a threads pool runs handlers concurrently

    def __call__(self, sender: Any = None, state: str | None = None, **_: Any) -> None:
        name = getattr(sender, "name", "") or ""
        if state != "SUCCESS" or not name.startswith("records.") or not self._due():
            return
        if self.pending_at_least(self.threshold):
            self.send()

    def _due(self) -> bool:
        with self._lock:
            self._count += 1
            return self._count % self.every == 0 and self.throttle.ready()


def _send_compaction() -> Any:
    return compact.apply_async(expires=TRIGGER_EXPIRES)


def _pending_at_least(count: int) -> bool:
    return bool(app.registry.audit_logger.pending_at_least(count))


trigger = CompactionTrigger(
    _pending_at_least,
    _send_compaction,
    every=app.settings.audit.threshold_check_every,
    threshold=app.settings.audit.compact_threshold,
)
signals.task_postrun.connect(trigger, weak=False)
