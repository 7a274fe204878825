"""Every error the inspector raises, under one base class.

    InspectorError
    ├── ResourceNotFound        the file, table or component does not exist
    ├── SourceUnavailable       the database holding an SQL resource cannot be reached
    ├── UnsupportedResource     the resource's kind is unknown or cannot be told from the file
    ├── UnreadableEncoding      the bytes are not text in any encoding tried (or the one given)
    ├── MalformedSource         the source cannot be parsed as its kind says
    │   ├── RaggedRow           a CSV row has more or fewer fields than the header
    │   └── FieldTooLarge       one field (or one JSON row) is larger than the configured limit
    ├── UnknownSourceField      a field map names a column the source does not have
    └── InvalidInspection       an inspection document is malformed

The inspector imports nothing from `registry`, so these are its own tree; each carries the
details it names as attributes and in `details`, and `to_dict()` for JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FieldTooLarge",
    "InspectorError",
    "InvalidInspection",
    "MalformedSource",
    "RaggedRow",
    "ResourceNotFound",
    "SourceUnavailable",
    "UnknownSourceField",
    "UnreadableEncoding",
    "UnsupportedResource",
]


class InspectorError(Exception):
    """Raised for any failure the inspector reports; the base of every error here."""

    def __init__(self, message: str, /, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.details}


class ResourceNotFound(InspectorError):
    """Raised when the file, table or schema component a resource names does not exist."""


class SourceUnavailable(InspectorError):
    """Raised when the database holding an SQL resource cannot be reached."""


class UnsupportedResource(InspectorError):
    """Raised when a resource's kind is unknown or cannot be told from its name and content."""


class UnreadableEncoding(InspectorError):
    """Raised when a file's bytes do not decode as text (in the encoding given, or any tried)."""


class MalformedSource(InspectorError):
    """Raised when a source cannot be parsed as its kind says (bad JSON, rows not objects...)."""


class RaggedRow(MalformedSource):
    """Raised when a CSV row has more or fewer fields than the header."""


class FieldTooLarge(MalformedSource):
    """Raised when one field, or one JSON row, is larger than the configured limit."""


class UnknownSourceField(InspectorError):
    """Raised when a field map names a source column the source does not have."""


class InvalidInspection(InspectorError):
    """Raised when an inspection document is malformed."""
