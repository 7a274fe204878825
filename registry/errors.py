"""Every error the registry raises, under one base class.

    RegistryError
    ├── ConfigurationError      a settings value is missing or malformed
    ├── InvalidName             a model or field name cannot become an SQL identifier
    ├── InvalidSchema           a model cannot be stored as JSON Schema or rebuilt from it
    │   └── InvalidIndex        a declared index cannot be built (a JSON field, say)
    ├── ModelNotFound           no model is registered under the name
    ├── SchemaIncompatible      re-registration would change stored columns incompatibly
    ├── RecordNotFound          no record has the id
    ├── ValidationFailed        the record does not validate (carries Pydantic's errors)
    │   ├── UnknownField        the data names a field the model does not have
    │   ├── PayloadTooLarge     the data is larger than the configured limit
    │   ├── InvalidFilter       a list filter has an unknown operator or a mistyped operand
    │   ├── InvalidCursor       a list cursor was altered or belongs to another query
    │   └── InvalidProjection   a projection definition is malformed or names bad fields
    ├── VersionConflict         expected_version does not match the stored version
    ├── IdempotencyConflict     an idempotency key is reused for another operation
    ├── DuplicateValue          a write would repeat a value a unique index holds
    ├── InvalidPermissions      permissions are malformed or cannot be stored
    ├── AuditIntegrityError     the audit chain does not verify
    ├── SourceUnreadable        an import's source is missing, unreadable or malformed
    ├── ImportNotFound          no import job has the id
    ├── OperationNotAllowed     the model's operation mode does not allow this operation
    ├── CommandRejected         a command handler refused the command (carries its reason)
    ├── ProjectionNotFound      no projection is defined under the name
    ├── ProjectionStale         a projection did not reach the wanted position in time
    ├── PermissionDenied        the role may not do this (also a builtin PermissionError)
    ├── MessageRefused          a worker refused a task message it cannot safely run
    │   └── MessageNotTrusted   signing is on and the message's signer may not send it
    ├── DatabaseLimitExceeded   the operation passes a limit of the database (columns, sizes)
    └── TaskTimeLimitExceeded   a task ran past its time limit and was stopped

Every error carries `to_dict()` so that it can cross a task boundary as JSON and be raised
again, with the same class name, in the producer.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditIntegrityError",
    "CommandRejected",
    "ConfigurationError",
    "DatabaseLimitExceeded",
    "DuplicateValue",
    "IdempotencyConflict",
    "ImportNotFound",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidIndex",
    "InvalidName",
    "InvalidPermissions",
    "InvalidProjection",
    "InvalidSchema",
    "MessageNotTrusted",
    "MessageRefused",
    "ModelNotFound",
    "OperationNotAllowed",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProjectionNotFound",
    "ProjectionStale",
    "RecordNotFound",
    "RegistryError",
    "SchemaIncompatible",
    "SourceUnreadable",
    "TaskTimeLimitExceeded",
    "UnknownField",
    "ValidationFailed",
    "VersionConflict",
    "error_from_dict",
    "expected_errors",
]


class RegistryError(Exception):
    """Raised for any failure the registry reports; the base of every error here."""

    #: Whether running the same request again could succeed (a database outage can pass;
    #: invalid data stays invalid).
    retryable = False
    #: Whether the error is the caller's doing (a bad request, a missing model), not a fault
    #: of the system: workers log it as one line, without a traceback.
    expected = True

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, /, **more: Any
    ) -> None:
        self.message = message
        self.details = {**(details or {}), **more}
        # The details ride in `args`: Celery's JSON results keep an exception as its class
        # name, module and args, and rebuild it as `cls(*args)` in the producer.
        super().__init__(message, self.details)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        # Logs and Flower show an error's repr: the message names things, the details may
        # hold values (a field's rejected input).
        return f"{type(self).__name__}({self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "details": self.details}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).__name__, self.message, self.details))


class ConfigurationError(RegistryError):
    """Raised when a settings value is missing or malformed; the message names the key."""

    expected = False


class InvalidName(RegistryError, ValueError):
    """Raised when a model or field name cannot safely become an SQL identifier."""


class InvalidSchema(RegistryError, ValueError):
    """Raised when a model cannot be stored as JSON Schema, or a JSON Schema cannot be rebuilt."""


class ModelNotFound(RegistryError, KeyError):
    """Raised when no model is registered under the name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class SchemaIncompatible(RegistryError):
    """Raised when re-registering a model would change its stored columns incompatibly."""


class RecordNotFound(RegistryError, LookupError):
    """Raised when a model has no record with the id."""


class ValidationFailed(RegistryError, ValueError):
    """Raised when data does not validate against the model; `errors` lists each field's error."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.details.get("errors", [])
        return errors


class UnknownField(ValidationFailed):
    """Raised when data names a field that the model does not have."""


class InvalidFilter(ValidationFailed):
    """Raised when a list filter names an unknown operator or gives an operand the field's
    type does not accept; `field` names the field."""


class InvalidCursor(ValidationFailed):
    """Raised when a list cursor is malformed, was altered, or was made for another query."""


class InvalidIndex(InvalidSchema):
    """Raised when a model declares an index that cannot be built (an unknown or JSON field)."""


class DuplicateValue(RegistryError):
    """Raised when a write would give a unique field a value another record already has;
    `fields` names the field(s), never the value."""


class PayloadTooLarge(ValidationFailed):
    """Raised when the data is larger than the configured limit (bytes)."""


class VersionConflict(RegistryError):
    """Raised when `expected_version` does not match the record's stored version."""


class IdempotencyConflict(RegistryError):
    """Raised when an idempotency key is reused for a different model or operation."""


class InvalidPermissions(RegistryError, ValueError):
    """Raised when permissions are malformed, or name a mask that cannot be stored."""


class AuditIntegrityError(RegistryError):
    """Raised when the audit chain does not verify."""

    expected = False


class SourceUnreadable(RegistryError, ValueError):
    """Raised when an import's source is missing, cannot be decoded, or is malformed (a
    ragged row, a field larger than the limit); the message names the row."""


class ImportNotFound(RegistryError, LookupError):
    """Raised when no import job has the id."""


class OperationNotAllowed(RegistryError):
    """Raised when the model's operation mode does not allow the operation (a command on a
    crud model, a direct write on a cqrs model); the message names the mode and what to use."""


class CommandRejected(RegistryError):
    """Raised when a command handler refuses a command; `reason` says why."""


class ProjectionNotFound(RegistryError, LookupError):
    """Raised when no projection is defined under the name."""


class ProjectionStale(RegistryError):
    """Raised when a projection has not reached `min_position` within `wait_seconds`; the
    details carry its position and lag."""

    retryable = True


class InvalidProjection(ValidationFailed):
    """Raised when a projection definition is malformed, or names fields that do not exist
    or cannot be measured."""


class PermissionDenied(RegistryError, PermissionError):
    """Raised when the role may not perform the operation or write the field."""


class MessageRefused(RegistryError):
    """Raised when a worker refuses a task message it cannot safely run: not JSON, compressed,
    nested too deep, not Celery's `[args, kwargs, embed]` shape, or with malformed headers.

    The message is dropped, not redelivered; `reason` says what was wrong.
    """


class MessageNotTrusted(MessageRefused):
    """Raised when signing is on and a task message is unsigned, signed by a certificate the
    worker does not trust or that expired, changed after signing, or claims a role or an
    action its signer's entry does not allow. Nothing of it runs; `reason` says which."""


class DatabaseLimitExceeded(RegistryError):
    """Raised when an operation would pass one of the database's own limits (columns per
    table, the size of a row or value); nothing was written."""


class TaskTimeLimitExceeded(RegistryError):
    """Raised when a task ran past its time limit and was stopped; its transaction rolled back."""

    expected = False


def _all_error_classes() -> dict[str, type[RegistryError]]:
    found: dict[str, type[RegistryError]] = {}
    pending: list[type[RegistryError]] = [RegistryError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def expected_errors() -> tuple[type[RegistryError], ...]:
    """Every error class that is the caller's doing (`expected`), for Celery's `Task.throws`
    (which matches subclasses too, so the base class itself is left out)."""
    return tuple(
        cls for cls in _all_error_classes().values() if cls.expected and cls is not RegistryError
    )


def _rebuild(type_name: str, message: str, details: dict[str, Any]) -> RegistryError:
    cls = _all_error_classes().get(type_name, RegistryError)
    return cls(message, **details)


def error_from_dict(data: dict[str, Any]) -> RegistryError:
    """Rebuild an error from `RegistryError.to_dict()` output; unknown types become the base."""
    details = dict(data.get("details") or {})
    return _rebuild(str(data.get("type")), str(data.get("message")), details)
