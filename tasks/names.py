"""The wire contract: stable task names and the queue each runs on.

Producers in any language send these names with JSON keyword arguments; moving a module never
changes them. The worker's routes and the client's queue choice both come from this table.
"""

from __future__ import annotations

__all__ = ["QUEUES", "TASK_QUEUES", "WRITE_QUEUES", "queue_for"]

#: Every queue the project declares; `cqrs` and `imports` are reserved for later issues.
QUEUES = ("registry", "crud", "cqrs", "imports", "audit")

#: Queues whose tasks write; they run with prefetch 1 and late acknowledgement.
WRITE_QUEUES = ("registry", "crud", "cqrs", "imports", "audit")

#: Task name prefix -> queue, the first match winning. A name outside these is not ours.
TASK_QUEUES = {
    # Reading history is a read like any other: it should not wait behind compaction on the
    # low-priority audit worker.
    "audit.history": "crud",
    # An import's chunks fill the `imports` queue; starting, sealing, cancelling and asking
    # after a job must not wait behind them.
    "imports.chunk": "imports",
    # Deleting old jobs is upkeep, like the idempotency keys' purge: it should not hold up
    # record calls or job calls.
    "imports.cleanup": "registry",
    "imports.": "crud",
    # CQRS reads run beside record reads; defining a projection is a registry change.
    "cqrs.execute_query": "crud",
    "cqrs.events": "crud",
    "cqrs.define_projection": "registry",
    "registry.": "registry",
    "records.": "crud",
    "cqrs.": "cqrs",
    "audit.": "audit",
}


def queue_for(task_name: str) -> str:
    """The queue of a task name; raises `KeyError` for a name outside the contract."""
    for prefix, queue in TASK_QUEUES.items():
        if task_name.startswith(prefix):
            return queue
    raise KeyError(f"Task name {task_name!r} belongs to no queue of the project.")
