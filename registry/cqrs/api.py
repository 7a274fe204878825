"""The registry's CQRS methods: thin sugar over `CqrsService`, as `registry.create(...)` is
over the record service. `DynamicModelRegistry` inherits them."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationFailed
from .commands import CommandRequest
from .events import Event
from .service import CqrsService

__all__ = ["CqrsApi", "QUERY_TYPES"]

QUERY_TYPES = ("get", "list", "projection")
_QUERY_KEYS = frozenset(
    {"type", "model", "aggregate_id", "projection", "filters", "order_by", "page", "page_size",
     "after", "count"}
)


class CqrsApi:
    """Mixed into `DynamicModelRegistry`, which provides `cqrs` and the record methods."""

    cqrs: CqrsService

    def execute_command(
        self,
        command: CommandRequest | Mapping[str, Any],
        user_id: str | None = None,
        user_role: str = "user",
    ) -> dict[str, Any]:
        """Run a command on a cqrs or hybrid model: `{"type": "create"|"update"|"delete"|
        <custom>, "model", "aggregate_id"?, "data"?, "expected_version"?, "command_id"?}`.
        Returns `{"aggregate_id", "version", "position", "events": [{"type", "version"}]}`."""
        return self.cqrs.execute_command(command, user_id, user_role)

    def execute_query(
        self,
        query: Mapping[str, Any],
        user_id: str | None = None,
        user_role: str = "user",
        *,
        min_position: int | None = None,
        wait_seconds: float | None = None,
    ) -> dict[str, Any]:
        """`{"type": "get", "model", "aggregate_id"}` -> the record; `{"type": "list",
        "model", "filters"?, "order_by"?, "page"?, "page_size"?, "after"?, "count"?}` (as
        `list`) or `{"type":
        "projection", "projection", ...}` -> `{"items", "page", "page_size", "total"}`.
        With `min_position`, waits up to `wait_seconds` for the projection to pass it, else
        raises `ProjectionStale`."""
        kind, query = _parse_query(query)
        if kind == "projection":
            name = query["projection"]
            self.cqrs.wait_for(name, min_position, wait_seconds)
            page, page_size = self._paging_of(query)
            return self.cqrs.query_projection(
                name, user_role, filters=query.get("filters"), order_by=query.get("order_by"),
                page=page, page_size=page_size, after=query.get("after"),
                count=query.get("count"),
            )
        model = query["model"]
        self.cqrs.wait_for(self.cqrs.default_projection_of(model), min_position, wait_seconds)
        if kind == "get":
            return self.read(model, query.get("aggregate_id"), user_id, user_role)  # type: ignore[attr-defined,no-any-return]
        return self.list(  # type: ignore[attr-defined,no-any-return]
            model, user_id, user_role, filters=query.get("filters"),
            order_by=query.get("order_by"), page=query.get("page", 1),
            page_size=query.get("page_size"), after=query.get("after"), count=query.get("count"),
        )

    def _paging_of(self, query: Mapping[str, Any]) -> tuple[int, int]:
        settings = self.cqrs.settings.models
        page = query.get("page", 1)
        size = query.get("page_size") or settings.default_page_size
        if not isinstance(page, int) or isinstance(page, bool) or page < 1 or page > 2**31:
            raise ValidationFailed(f"Page must be a whole number from 1, not {page!r}.",
                                   errors=[{"loc": ["page"], "msg": "must be >= 1",
                                            "type": "page"}])
        if (not isinstance(size, int) or isinstance(size, bool)
                or not 1 <= size <= settings.max_page_size):
            raise ValidationFailed(
                f"Page size must be a whole number from 1 to {settings.max_page_size}, "
                f"not {size!r}.",
                errors=[{"loc": ["page_size"], "msg": "out of range", "type": "page_size"}],
            )
        return page, size

    def define_projection(
        self,
        definition: Mapping[str, Any],
        *,
        force: bool = False,
        user_id: str | None = None,
        user_role: str = "admin",
    ) -> dict[str, Any]:
        """Declare a projection (see `registry.cqrs.projections`); returns its description."""
        return self.cqrs.define_projection(
            definition, force=force, user_id=user_id, user_role=user_role
        )

    def rebuild_projection(self, name: str) -> dict[str, int]:
        """Replay a projection into shadow tables and swap them in: `{"events", "rows"}`."""
        return self.cqrs.rebuild_projection(name)

    def project(self) -> dict[str, int]:
        """Apply pending events to every projection: `{"events": applied}`."""
        return self.cqrs.project()

    def projection_status(self) -> dict[str, dict[str, Any]]:
        """Per projection: `{"checkpoint", "head", "lag", "blocked"}` (positions and
        events; `blocked` says where and why a projection stopped, None when it did not)."""
        return self.cqrs.status()

    def events(
        self,
        after_position: int = 0,
        limit: int = 100,
        model: str | None = None,
        user_id: str | None = None,
        user_role: str = "user",
    ) -> dict[str, Any]:
        """The event feed: `{"events": [...], "last_position"}`, masked for the role."""
        return self.cqrs.events(after_position, limit, model, user_role)

    def event_stream(self, model: str, aggregate_id: str) -> builtins.list[Event]:
        """Every event of one aggregate, oldest first, unmasked (in-process only)."""
        return self.cqrs.stream(model, aggregate_id)


def _parse_query(query: Any) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(query, Mapping):
        raise ValidationFailed("A query must be an object with a type.",
                               errors=[{"loc": ["query"], "msg": "must be an object",
                                        "type": "argument"}])
    unknown = sorted(str(k) for k in query if k not in _QUERY_KEYS)
    kind = query.get("type")
    problems = [([key], "is not a query key") for key in unknown]
    if kind not in QUERY_TYPES:
        problems.append((["type"], f"must be one of {', '.join(QUERY_TYPES)}"))
    elif kind == "projection" and not isinstance(query.get("projection"), str):
        problems.append((["projection"], "must name a projection"))
    elif kind != "projection" and not isinstance(query.get("model"), str):
        problems.append((["model"], "must name a model"))
    if kind == "get" and not isinstance(query.get("aggregate_id"), str):
        problems.append((["aggregate_id"], "must be a record id"))
    if problems:
        raise ValidationFailed(
            "The query is malformed: " + "; ".join(f"{'.'.join(loc)} {why}"
                                                   for loc, why in problems) + ".",
            errors=[{"loc": ["query", *loc], "msg": why, "type": "argument"}
                    for loc, why in problems],
        )
    return str(kind), query
