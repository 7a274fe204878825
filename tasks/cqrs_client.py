"""The producer's CQRS methods; `RegistryClient` inherits them. Each sends one task by its
stable name (see tasks/cqrs.py) and returns a `TaskHandle`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import TaskHandle

__all__ = ["CqrsClientMethods"]


class CqrsClientMethods:
    def send(self, name: str, /, **kwargs: Any) -> TaskHandle:
        raise NotImplementedError

    def execute_command(
        self, command: Mapping[str, Any], user_id: str | None, user_role: str
    ) -> TaskHandle:
        """Send a command; without a `command_id` one is made here, so that resending the
        handle (`handle.resend()`) appends nothing twice."""
        body = dict(command)
        if body.get("command_id") is None:
            body["command_id"] = f"client:{uuid.uuid4()}"
        return self.send("cqrs.execute_command", command=body, user_id=user_id,
                         user_role=user_role)

    def execute_query(
        self,
        query: Mapping[str, Any],
        user_id: str | None,
        user_role: str,
        min_position: int | None = None,
        wait_seconds: float | None = None,
    ) -> TaskHandle:
        return self.send("cqrs.execute_query", query=dict(query), user_id=user_id,
                         user_role=user_role, min_position=min_position,
                         wait_seconds=wait_seconds)

    def events(
        self,
        after_position: int,
        limit: int,
        user_id: str | None,
        user_role: str,
        model: str | None = None,
    ) -> TaskHandle:
        return self.send("cqrs.events", after_position=after_position, limit=limit,
                         model=model, user_id=user_id, user_role=user_role)

    def define_projection(
        self, definition: Mapping[str, Any], user_id: str | None, user_role: str,
        force: bool = False,
    ) -> TaskHandle:
        return self.send("cqrs.define_projection", definition=dict(definition), force=force,
                         user_id=user_id, user_role=user_role)

    def rebuild_projection(self, name: str) -> TaskHandle:
        return self.send("cqrs.rebuild_projection", name=name)

    def project(self) -> TaskHandle:
        return self.send("cqrs.project")

    def projection_status(self) -> TaskHandle:
        return self.send("cqrs.status")
