"""Tasks made from operations: the task's signature, decoding and checks come from the
operation class (registry/operations.py), so an argument is declared once.

    records_create = operation_task("records.create", CreateRecord)

The task binds its JSON arguments (positional or keyword) to the operation's fields, decodes
them into the operation (`ValidationFailed` naming each wrong argument), hands it to the
registry and returns the JSON answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from registry.operations import Operation
from workers.app import app

from .base import RegistryTask

__all__ = ["operation_task", "registry_task", "task_idempotency_key"]

Answer = Callable[[Any], Any]


def registry_task(name: str) -> Callable[[Callable[..., Any]], RegistryTask]:
    """Register the decorated function as the task `name` on the project's app: a
    `RegistryTask`, bound (its first argument is the task, with the process's registry)."""

    def register(function: Callable[..., Any]) -> RegistryTask:
        task: RegistryTask = app.task(name=name, base=RegistryTask, bind=True)(function)
        return task

    return register


def operation_task(
    name: str,
    operation: type[Operation],
    *,
    answer: Answer | None = None,
    defaults: Callable[[RegistryTask, dict[str, Any]], dict[str, Any]] | None = None,
) -> RegistryTask:
    """Register task `name` for `operation`. `answer` turns the domain's result into JSON
    (the result itself when None); `defaults` fills arguments from the task's request."""
    wire = operation.wire_signature()

    def run(self: RegistryTask, *args: Any, **kwargs: Any) -> Any:
        # `RegistryTask` has already bound the arguments to this signature (a mismatch never
        # gets here), so keyword arguments alone, what producers send, are the arguments.
        arguments = dict(kwargs) if not args else dict(wire.bind(*args, **kwargs).arguments)
        if defaults is not None:
            arguments = defaults(self, arguments)
        result = self.registry.handle(operation.decode(arguments, task=name))
        return result if answer is None else answer(result)

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    run.__signature__ = wire.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *wire.parameters.values()]
    )
    run.__name__ = run.__qualname__ = name.replace(".", "_")
    run.__doc__ = operation.__doc__
    return registry_task(name)(run)


def task_idempotency_key(task: RegistryTask, arguments: dict[str, Any]) -> dict[str, Any]:
    # A producer that sends no key still gets one write per message: the task id stays the
    # same across redelivery and retries.
    if arguments.get("idempotency_key") is None:
        arguments["idempotency_key"] = f"task:{task.request.id}"
    return arguments
