"""CQRS tasks. Names and queues are the contract (tasks/names.py routes them):

    cqrs.execute_command(command, user_id, user_role)        queue cqrs
        -> {"aggregate_id", "version", "position", "events": [{"type", "version"}]}
    cqrs.execute_query(query, user_id, user_role, min_position=None, wait_seconds=None)
                                                             queue crud
        -> get: the record; list/projection: {"items", "page", "page_size", "total"}
    cqrs.define_projection(definition, force, user_id, user_role)   queue registry
        -> the projection's stored description
    cqrs.rebuild_projection(name)                            queue cqrs  -> {"events", "rows"}
    cqrs.project()                                           queue cqrs  -> {"events"}
    cqrs.events(after_position, limit, model, user_id, user_role)   queue crud
        -> {"events": [...], "last_position"}
    cqrs.status()                                            queue cqrs
        -> {projection: {"checkpoint", "head", "lag"}}

Beat runs `cqrs.project` every `cqrs.project_interval_seconds`; between runs, a worker that
has just executed commands sends one (`ProjectTrigger`, as the audit trigger does), so a
projection follows its commands within milliseconds instead of a schedule tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery import signals

from registry.operations import check_caller, check_seconds, check_whole_number

from .base import RegistryTask
from .operations import registry_task
from .throttle import Throttle

__all__ = [
    "ProjectTrigger",
    "define_projection",
    "events",
    "execute_command",
    "execute_query",
    "project",
    "rebuild_projection",
    "status",
]

#: Seconds a triggered projector message stays valid in the queue.
TRIGGER_EXPIRES = 30.0


@registry_task("cqrs.execute_command")
def execute_command(
    self: RegistryTask, command: dict[str, Any], user_id: str | None, user_role: str
) -> dict[str, Any]:
    check_caller(user_id, user_role)
    if isinstance(command, dict) and command.get("command_id") is None:
        # A redelivered or retried message appends once: the task id is the default key.
        command = {**command, "command_id": f"task:{self.request.id}"}
    return self.registry.execute_command(command, user_id, user_role)


@registry_task("cqrs.execute_query")
def execute_query(
    self: RegistryTask,
    query: dict[str, Any],
    user_id: str | None,
    user_role: str,
    min_position: int | None = None,
    wait_seconds: float | None = None,
) -> dict[str, Any]:
    check_caller(user_id, user_role)
    check_whole_number("min_position", min_position)
    check_seconds("wait_seconds", wait_seconds)
    return self.registry.execute_query(
        query, user_id, user_role, min_position=min_position, wait_seconds=wait_seconds
    )


@registry_task("cqrs.define_projection")
def define_projection(
    self: RegistryTask,
    definition: dict[str, Any],
    force: bool = False,
    user_id: str | None = None,
    user_role: str | None = None,
) -> dict[str, Any]:
    role = check_caller(user_id, user_role)
    return self.registry.define_projection(
        definition, force=force, user_id=user_id, user_role=role
    )


@registry_task("cqrs.rebuild_projection")
def rebuild_projection(self: RegistryTask, name: str) -> dict[str, int]:
    return self.registry.rebuild_projection(name)


@registry_task("cqrs.project")
def project(self: RegistryTask) -> dict[str, int]:
    return self.registry.project()


@registry_task("cqrs.events")
def events(
    self: RegistryTask,
    after_position: int = 0,
    limit: int = 100,
    model: str | None = None,
    user_id: str | None = None,
    user_role: str | None = None,
) -> dict[str, Any]:
    role = check_caller(user_id, user_role)
    check_whole_number("after_position", after_position, required=True)
    return self.registry.events(after_position, limit, model, user_id, role)


@registry_task("cqrs.status")
def status(self: RegistryTask) -> dict[str, dict[str, Any]]:
    return self.registry.projection_status()


class ProjectTrigger:
    """A `task_postrun` handler: after a successful command (or hybrid write), send one
    `cqrs.project`, at most once per `min_interval` seconds per process. A projector that
    finds the projections busy or current returns at once, so duplicates cost little."""

    def __init__(
        self,
        send: Callable[[], Any],
        *,
        min_interval: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.throttle = Throttle(min_interval, clock)

    def __call__(self, sender: Any = None, state: str | None = None, **_: Any) -> None:
        name = getattr(sender, "name", "") or ""
        if state == "SUCCESS" and name == "cqrs.execute_command" and self.throttle.ready():
            self.send()


def _send_projection() -> Any:
    return project.apply_async(expires=TRIGGER_EXPIRES)


trigger = ProjectTrigger(_send_projection)
signals.task_postrun.connect(trigger, weak=False)
