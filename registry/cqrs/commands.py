"""Commands: the only way to change a cqrs model, and one of two ways to change a hybrid one.

A command is checked exactly as a CRUD write is (role permission, field write permissions,
size and unknown fields, the Pydantic model), then turned into events that the store appends
with the next aggregate version. The events, their audit entries and the command's
idempotency record share one transaction (Invariant 1); in hybrid mode the model's table is
updated in that transaction too, so reads see the write at once.

Built-in commands are `create`, `update` and `delete`. Custom commands are handlers
registered by name for a model, in modules the `cqrs.command_modules` setting lists:

    @command_handler("Order", "pay")
    def pay(context: CommandContext) -> list[EventDraft]:
        if context.state["status"] != "open":
            raise CommandRejected("Only an open order can be paid.", reason="not open")
        return [EventDraft(type="paid", changes={"status": "paid"})]

A handler gets the aggregate's current state and the command's payload; its drafts carry
field changes, which are validated and checked against the role's write permissions like an
update, so the default projection and history need nothing extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import (
    CommandRejected,
    ConfigurationError,
    RecordNotFound,
    ValidationFailed,
    VersionConflict,
)
from ..ids import new_id

__all__ = [
    "COMMANDS_NS",
    "CommandContext",
    "CommandHandler",
    "CommandRequest",
    "command_handler",
    "handler_for",
    "load_command_modules",
]

COMMANDS_NS = "commands"
BUILT_IN_COMMANDS = ("create", "update", "delete")


class CommandRequest(BaseModel):
    """A command as a producer sends it (the specification's `Command`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    model: str = Field(min_length=1, max_length=64)
    aggregate_id: str | None = Field(default=None, min_length=1, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    expected_version: int | None = Field(default=None, ge=0)
    #: The idempotency key: the same command id twice appends once.
    command_id: str | None = Field(default=None, min_length=1, max_length=200)
    correlation_id: str | None = Field(default=None, max_length=200)
    ns: str = COMMANDS_NS

    @classmethod
    def parse(cls, data: Any) -> CommandRequest:
        """Raises `ValidationFailed` naming each malformed part (never echoing values)."""
        if isinstance(data, CommandRequest):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = [
                {"loc": ["command", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
            summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise ValidationFailed(f"The command is malformed: {summary}.", errors=errors) from None

    @field_validator("data", mode="before")
    @classmethod
    def _no_data_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


@dataclass(frozen=True)
class CommandContext:
    """What a custom handler decides from."""

    model: str
    aggregate_id: str
    #: The aggregate's fields now (JSON values); None if it does not exist.
    state: dict[str, Any] | None
    version: int
    payload: dict[str, Any]
    user_id: str | None
    user_role: str


CommandHandler = Callable[[CommandContext], Any]
_handlers: dict[tuple[str, str], CommandHandler] = {}


def command_handler(model: str, name: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register a function as the handler of command `name` for `model`."""
    if name in BUILT_IN_COMMANDS:
        raise ConfigurationError(f"Command {name!r} is built in and cannot be replaced.")

    def register(function: CommandHandler) -> CommandHandler:
        _handlers[(model, name)] = function
        return function

    return register


def handler_for(model: str, name: str) -> CommandHandler:
    """Raises `CommandRejected` when no handler is registered (a typed, named error)."""
    handler = _handlers.get((model, name))
    if handler is None:
        known = sorted(n for (m, n) in _handlers if m == model)
        raise CommandRejected(
            f"Model {model!r} has no command {name!r}; it has create, update, delete"
            + (f" and {', '.join(map(repr, known))}." if known else "."),
            model=model,
            command=name,
            reason="unknown command",
        )
    return handler


def load_command_modules(paths: Sequence[str]) -> None:
    """Import the modules that register handlers; raises `ConfigurationError` naming a
    module that cannot be imported."""
    for path in paths:
        try:
            importlib.import_module(path)
        except Exception as exc:
            raise ConfigurationError(
                f"Setting cqrs.command_modules: module {path!r} cannot be imported ({exc})."
            ) from exc


def new_aggregate_id(command: CommandRequest) -> str:
    return command.aggregate_id or new_id()


def require_state(
    model: str, aggregate_id: str, state: Mapping[str, Any] | None, version: int
) -> Mapping[str, Any]:
    if state is None:
        raise RecordNotFound(
            f"Model {model!r} has no record {aggregate_id!r}.", model=model, record_id=aggregate_id
        )
    return state


def check_expected(command: CommandRequest, aggregate_id: str, version: int) -> None:
    if command.expected_version is not None and command.expected_version != version:
        raise VersionConflict(
            f"Record {aggregate_id!r} of {command.model!r} is at version {version}, not the "
            f"expected {command.expected_version}.",
            model=command.model,
            record_id=aggregate_id,
            expected_version=command.expected_version,
            actual_version=version,
        )
