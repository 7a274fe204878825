"""Every record operation as one value, defined once: the specification's `Command` and `Query`.

    Command (ns="commands"): CreateRecord, UpdateRecord, DeleteRecord
    Query   (ns="queries"):  GetRecord, ListRecords, RecordHistory, RecordAsOf

An operation carries its model, its caller (`user_id`, `user_role`) and its own arguments, and
checks them here, once: types (strictly: JSON producers send `"1"` for 1 by mistake, not on
purpose), lengths, NUL characters and lone surrogates, which no database text column stores.
What depends on the model (unknown fields, write permissions, the model's own validation) or
on settings (payload size, page size limit) is the record service's to check.

The client builds an operation and sends `wire_arguments()` as a task's JSON kwargs; the task
decodes them with `decode()`; the domain handles the operation. The in-process methods
(`registry.create(...)`) build the same objects. A new argument is a new field here: the
task's signature (`wire_signature()`), its decoding and its checks follow from it.

Every check failure is `ValidationFailed` naming the argument, never Pydantic's own error.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError, PydanticSerializationError, to_json

from .errors import ValidationFailed
from .ids import new_id

__all__ = [
    "MAX_IDEMPOTENCY_KEY",
    "MAX_OFFSET",
    "MAX_RECORD_ID",
    "MAX_ROLE",
    "MAX_USER_ID",
    "Command",
    "CreateRecord",
    "DeleteRecord",
    "GetRecord",
    "ListRecords",
    "Operation",
    "Query",
    "REQUIRED",
    "RecordAsOf",
    "RecordHistory",
    "UpdateRecord",
    "check_caller",
    "check_field_values",
    "check_seconds",
    "check_whole_number",
    "check_role",
    "check_text",
    "invalid_argument",
    "invalid_arguments",
    "find_path",
    "non_finite_path",
    "nul_path",
]

#: Longest values the system columns hold (characters).
MAX_USER_ID = 200
MAX_ROLE = 200
MAX_IDEMPOTENCY_KEY = 200
MAX_RECORD_ID = 64
MAX_MODEL_NAME = 200
MAX_FIELD_NAME = 200
#: Longest list cursor and count mode accepted (characters).
MAX_CURSOR = 4096
MAX_COUNT_MODE = 16
#: Largest row offset a page may start at (a signed 64-bit OFFSET on every backend).
MAX_OFFSET = 2**62


# -- argument checks ------------------------------------------------------------------------


def _argument_error(why: str) -> PydanticCustomError:
    return PydanticCustomError("argument", why)


def text_problem(
    value: Any, limit: int, *, required: bool, allow_empty: bool = False
) -> str | None:
    """Why `value` cannot be a text argument (None when it can). An empty string is refused
    unless `allow_empty`: an empty user id or key would be one shared by every caller that
    sends one."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        return "must be a non-empty string" if required else "must be a non-empty string or null"
    if len(value) > limit:
        return f"is {len(value)} characters long; the limit is {limit}"
    if "\x00" in value:
        return "holds a NUL character"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "is not valid Unicode"
    return None


def _text(limit: int, *, required: bool, allow_empty: bool = False) -> BeforeValidator:
    def check(value: Any) -> Any:
        problem = text_problem(value, limit, required=required, allow_empty=allow_empty)
        if problem is not None:
            raise _argument_error(problem)
        return value

    return BeforeValidator(check)


def _whole_number(value: Any) -> Any:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _argument_error("must be a whole number")
    return value


def _counting_number(value: Any) -> Any:
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or value < 1
    ):
        raise _argument_error("must be a whole number from 1")
    return value


def _time(value: Any, info: ValidationInfo) -> Any:
    """A datetime, or ISO 8601 text as JSON producers send it; UTC when naive."""
    # Time arguments have always been named "Argument 'since'" in messages.
    label = {"label": f"Argument {info.field_name!r}"}
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("argument", _ISO_TIME, label) from None
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise PydanticCustomError("argument", _ISO_TIME, label)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise PydanticCustomError(
            "argument", "falls outside the years 1 to 9999 in UTC", label
        ) from None


def _required_time(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        raise PydanticCustomError(
            "argument", _ISO_TIME, {"label": f"Argument {info.field_name!r}"}
        )
    return _time(value, info)


_ISO_TIME = "must be an ISO 8601 time such as '2026-11-26T10:30:00Z'"


def check_field_values(name: str, value: Any) -> dict[str, Any]:
    """`value` as an object of field values (what `data` and `updates` are checked for),
    for callers that do not build an operation; raises `ValidationFailed` naming `name`."""
    try:
        checked: dict[str, Any] = _json_object(value)
    except PydanticCustomError as exc:
        path = (exc.context or {}).get("path", [])
        raise ValidationFailed(
            f"Invalid call: {name} {exc.message()}.",
            errors=[{"loc": [name, *path], "msg": exc.message(), "type": "argument"}],
        ) from None
    return checked


def _json_object(value: Any) -> Any:
    """An object of field values: JSON-encodable, valid Unicode, no NUL anywhere."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _argument_error(
            f"must be an object of field values, not {type(value).__name__}"
        )
    value = value if type(value) is dict else dict(value)
    try:
        encoded = to_json(value, fallback=str)
    except PydanticSerializationError:
        raise _argument_error(
            "holds text that is not valid Unicode (a lone surrogate), which cannot be stored"
        ) from None
    if b"\\u0000" in encoded:  # cheap test first; the walk names the field
        where = nul_path(value)
        if where is not None:
            raise PydanticCustomError(
                "argument",
                "holds a NUL character in '{field}', which no text column can store",
                {"field": ".".join(where), "path": list(where)},
            )
    if b"NaN" in encoded or b"Infinity" in encoded:  # numbers, or merely text that says so
        where = non_finite_path(value)
        if where is not None:
            raise PydanticCustomError(
                "argument",
                "holds NaN or an infinity in '{field}', which JSON cannot carry and "
                "the registry does not store",
                {"field": ".".join(where), "path": list(where)},
            )
    return value


ModelName = Annotated[str, _text(MAX_MODEL_NAME, required=True)]
UserId = Annotated[str | None, _text(MAX_USER_ID, required=False)]
UserRole = Annotated[str, _text(MAX_ROLE, required=True)]
RecordId = Annotated[str, _text(MAX_RECORD_ID, required=True)]
OptionalRecordId = Annotated[str | None, _text(MAX_RECORD_ID, required=False)]
IdempotencyKey = Annotated[str | None, _text(MAX_IDEMPOTENCY_KEY, required=False)]
#: "" orders as None does (by creation), as it always has.
FieldName = Annotated[str | None, _text(MAX_FIELD_NAME, required=False, allow_empty=True)]
Version = Annotated[int | None, BeforeValidator(_whole_number)]
Time = Annotated[datetime.datetime, BeforeValidator(_required_time)]
OptionalTime = Annotated[datetime.datetime | None, BeforeValidator(_time)]
FieldValues = Annotated[dict[str, Any], BeforeValidator(_json_object)]
OptionalFieldValues = Annotated[dict[str, Any] | None, BeforeValidator(_json_object)]


class _Required:
    def __repr__(self) -> str:
        return "<required>"


#: The signature default of a required argument that follows optional ones.
REQUIRED: Any = _Required()


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# -- the operations -------------------------------------------------------------------------


class Operation(BaseModel):
    """An operation: frozen, no unknown arguments, checked when made."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    #: Fields that identify the operation itself rather than being arguments of its task.
    identity_fields: ClassVar[frozenset[str]] = frozenset({"command_id", "timestamp", "query_id"})

    @classmethod
    def decode(cls, arguments: Mapping[str, Any], *, task: str | None = None) -> Self:
        """The operation from a task's JSON kwargs; raises `ValidationFailed` naming each
        argument that is missing, unknown or wrong."""
        if any(value is REQUIRED for value in arguments.values()):
            arguments = {name: v for name, v in arguments.items() if v is not REQUIRED}
        try:
            return cls.model_validate(arguments)
        except ValidationError as exc:
            raise invalid_arguments(exc, task or cls.__name__) from None

    @classmethod
    def build(cls, **arguments: Any) -> Self:
        """The operation from Python arguments (in-process callers and the client)."""
        return cls.decode(arguments)

    def wire_arguments(self) -> dict[str, Any]:
        """The task's JSON kwargs: every argument, none of the operation's identity."""
        return {
            name: _to_wire(getattr(self, name))
            for name in type(self).model_fields
            if name not in self.identity_fields
        }

    @classmethod
    def wire_signature(cls) -> inspect.Signature:
        """The task's signature, in field order, defaults as the fields declare them. A
        required argument after one with a default gets `REQUIRED` as its default, so that
        every argument can still be sent by position; `decode` reports it missing."""
        parameters = []
        seen_default = False
        for name, info in cls.model_fields.items():
            if name in cls.identity_fields:
                continue
            default = inspect.Parameter.empty if info.is_required() else info.default
            if default is inspect.Parameter.empty and seen_default:
                default = REQUIRED
            seen_default = default is not inspect.Parameter.empty
            parameters.append(
                inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
            )
        return inspect.Signature(parameters)


class Command(Operation):
    """An operation that changes state (the specification's `Command`)."""

    command_id: str = Field(default_factory=new_id)
    timestamp: datetime.datetime = Field(default_factory=_utc_now)
    ns: ClassVar[Literal["commands"]] = "commands"


class Query(Operation):
    """An operation that reads state (the specification's `Query`)."""

    query_id: str = Field(default_factory=new_id)
    ns: ClassVar[Literal["queries"]] = "queries"


class CreateRecord(Command):
    """Validate and store a new record."""

    model: ModelName
    data: FieldValues
    user_id: UserId
    user_role: UserRole
    idempotency_key: IdempotencyKey = None


class UpdateRecord(Command):
    """Change some fields of a record; `expected_version` guards against lost updates."""

    model: ModelName
    record_id: RecordId
    updates: FieldValues
    user_id: UserId
    user_role: UserRole
    expected_version: Version = None
    idempotency_key: IdempotencyKey = None


class DeleteRecord(Command):
    """Delete a record; `expected_version` guards against deleting a changed record."""

    model: ModelName
    record_id: RecordId
    user_id: UserId
    user_role: UserRole
    expected_version: Version = None
    idempotency_key: IdempotencyKey = None


class GetRecord(Query):
    """One record as the role may see it."""

    model: ModelName
    record_id: RecordId
    user_id: UserId
    user_role: UserRole


class ListRecords(Query):
    """One page of records: `filters` (the grammar in registry/query/filters.py), `order_by`
    a field (`-field` descending), `page` from 1 or `after` a cursor, `page_size` up to
    `models.max_page_size` (default when None), `count` how the total is counted."""

    model: ModelName
    user_id: UserId
    user_role: UserRole
    filters: OptionalFieldValues = None
    order_by: FieldName = None
    page: Annotated[int, BeforeValidator(_counting_number)] = 1
    page_size: Annotated[int | None, BeforeValidator(_counting_number)] = None
    #: A page's `next_cursor`: the page after it (registry/query/cursors.py).
    after: Annotated[str | None, _text(MAX_CURSOR, required=False, allow_empty=True)] = None
    #: "exact", "estimated", "none", or None: exact when cheap, else estimated.
    count: Annotated[str | None, _text(MAX_COUNT_MODE, required=False)] = None

    def offset(self, page_size: int) -> int:
        return (self.page - 1) * page_size


class RecordHistory(Query):
    """Audit entries of a record (or, without one, of the model), oldest first: `since`
    inclusive, `until` exclusive, `actor` one user's changes."""

    model: ModelName
    record_id: OptionalRecordId = None
    user_id: UserId = None
    user_role: UserRole
    since: OptionalTime = None
    until: OptionalTime = None
    actor: UserId = None


class RecordAsOf(Query):
    """A record as it was at `at` (UTC when naive), rebuilt from its audit history."""

    model: ModelName
    record_id: RecordId
    at: Time
    user_id: UserId
    user_role: UserRole


# -- errors ---------------------------------------------------------------------------------

#: How a message names an argument when its quoted name reads badly.
_LABELS = {"page": "Page", "page_size": "Page size"}
_PLAIN_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not an argument here",
}


def invalid_arguments(exc: ValidationError, where: str) -> ValidationFailed:
    """Pydantic's errors for an operation's arguments as one `ValidationFailed` that names
    each argument; values are left out (they may be secrets, Invariant 4)."""
    problems = []
    errors: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]) if error["loc"] else "(arguments)"
        context = error.get("ctx", {})
        if error["type"] == "argument":
            why = error["msg"]
        else:
            why = _PLAIN_REASONS.get(error["type"], f"is invalid ({error['msg']})")
        problems.append((context.get("label") or _LABELS.get(name, name), why))
        # A problem inside data names the field too (loc ["data", "name"]), as forms show it.
        errors.append({"loc": [name, *context.get("path", [])], "msg": why, "type": "argument"})
    return ValidationFailed(
        f"Invalid call to {where}: "
        + "; ".join(f"{label} {why}" for label, why in problems)
        + ".",
        errors=errors,
    )


def check_text(name: str, value: Any, *, required: bool, limit: int = MAX_MODEL_NAME) -> None:
    """One text argument of a task that has no operation; raises `ValidationFailed`."""
    problem = text_problem(value, limit, required=required)
    if problem is not None:
        raise invalid_argument(name, problem)


def invalid_argument(name: str, problem: str) -> ValidationFailed:
    """The error for one bad argument `name` of a call that has no operation; `problem`
    completes the sentence ("must be ...")."""
    return ValidationFailed(
        f"Invalid call: {name} {problem}.",
        errors=[{"loc": [name], "msg": problem, "type": "argument"}],
    )


def check_caller(user_id: Any, user_role: Any) -> str:
    """The caller's arguments of a task that has no operation; returns the role. Raises
    `ValidationFailed`."""
    check_text("user_id", user_id, required=False, limit=MAX_USER_ID)
    return check_role(user_role)


def check_whole_number(name: str, value: Any, *, required: bool = False) -> None:
    """A whole-number argument (positions, counts) of a task that has no operation: an int
    that a 64-bit column can compare with; raises `ValidationFailed`."""
    if value is None and not required:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        why = "must be a whole number from 0 below 2**63"
        raise invalid_argument(name, why)


def check_seconds(name: str, value: Any) -> None:
    """A duration argument in seconds (or None): a finite number from 0."""
    if value is None:
        return
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        why = "must be a finite number of seconds from 0"
        raise invalid_argument(name, why)


def check_role(user_role: Any) -> str:
    """A role argument on its own (tasks that take only a role); raises `ValidationFailed`."""
    check_text("user_role", user_role, required=True, limit=MAX_ROLE)
    return str(user_role)


def find_path(
    value: Any, found: Callable[[Any], bool], path: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """The path to the first value inside JSON data for which `found` is true."""
    if found(value):
        return path
    if isinstance(value, Mapping):
        items: Any = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        where = find_path(item, found, (*path, key))
        if where is not None:
            return where
    return None


def nul_path(value: Any) -> tuple[str, ...] | None:
    """Where a NUL character hides in JSON data (no database text column can hold one)."""
    return find_path(value, lambda item: isinstance(item, str) and "\x00" in item)


def non_finite_path(value: Any) -> tuple[str, ...] | None:
    """Where a NaN or an infinity hides in JSON data (JSON has no such numbers)."""
    return find_path(
        value,
        lambda item: isinstance(item, float | decimal.Decimal) and not math.isfinite(item),
    )


def _to_wire(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value
