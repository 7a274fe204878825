"""What the inspector reads: a file path, or `{"kind", "location", "table"?, "options"?}`.

Kinds: `csv`, `tsv`, `jsonl`, `json` (an array of objects), `parquet` (with the `parquet`
extra installed), `sql` (a SQLAlchemy URL plus a table name), `json_schema` (a JSON Schema
document) and `openapi` (a component schema of an OpenAPI 3 document, named by `table` or
`options["component"]`). A bare path's kind is told from its suffix and, for `.json` and
unknown suffixes, from its content (a Parquet file starts with `PAR1`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from .errors import ResourceNotFound, UnsupportedResource

__all__ = ["KINDS", "Resource"]

KINDS = ("csv", "tsv", "jsonl", "json", "parquet", "sql", "json_schema", "openapi")
FILE_KINDS = frozenset({"csv", "tsv", "jsonl", "json", "parquet", "json_schema", "openapi"})
_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".yaml": "openapi",
    ".yml": "openapi",
}
#: URL schemes SQLAlchemy reaches with the drivers this project installs.
_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
#: The bytes a Parquet file starts with.
_PARQUET_MAGIC = b"PAR1"
#: How much of a `.json` file is read to tell an array of records from a schema document.
_PEEK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Resource:
    """A data source: its kind, where it is, the table (or component) and reading options."""

    kind: str
    location: str
    table: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: ResourceLike) -> Resource:
        """The resource `value` names. Raises `UnsupportedResource`, `ResourceNotFound`."""
        if isinstance(value, Resource):
            return value
        if isinstance(value, Mapping):
            return cls._from_mapping(value)
        if isinstance(value, str | os.PathLike):
            return cls._from_location(os.fspath(value))
        raise UnsupportedResource(
            f"A resource is a path or a mapping with 'kind' and 'location', not "
            f"{type(value).__name__}.",
        )

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def is_file(self) -> bool:
        return self.kind in FILE_KINDS

    def describe(self) -> dict[str, Any]:
        """The resource as the inspection's `source` names it (passwords masked)."""
        found: dict[str, Any] = {"kind": self.kind, "location": self.display_location}
        if self.table is not None:
            found["table"] = self.table
        return found

    @property
    def display_location(self) -> str:
        if self.kind != "sql":
            return self.location
        import sqlalchemy as sa

        return sa.make_url(self.location).render_as_string(hide_password=True)

    @classmethod
    def _from_mapping(cls, value: Mapping[str, Any]) -> Resource:
        unknown = sorted(set(value) - {"kind", "location", "table", "options"})
        if unknown:
            raise UnsupportedResource(f"A resource mapping has no keys {unknown}.", keys=unknown)
        location = value.get("location")
        if not isinstance(location, str | os.PathLike) or not os.fspath(location):
            raise UnsupportedResource("A resource mapping needs a 'location' (a path or a URL).")
        kind = value.get("kind") or cls._from_location(os.fspath(location)).kind
        if kind not in KINDS:
            raise UnsupportedResource(
                f"Resource kind {kind!r} is not one of {', '.join(KINDS)}.", kind=kind
            )
        options = value.get("options") or {}
        if not isinstance(options, Mapping):
            raise UnsupportedResource("A resource's 'options' must be a mapping.")
        table = value.get("table")
        resource = cls(kind, os.fspath(location), table, dict(options))
        resource._check()
        return resource

    @classmethod
    def _from_location(cls, location: str) -> Resource:
        if location.split(":", 1)[0].split("+", 1)[0] in _SQL_SCHEMES and "://" in location:
            raise UnsupportedResource(
                "An SQL resource needs a table: give {'kind': 'sql', 'location': URL, "
                "'table': NAME}.",
                location=location,
            )
        path = Path(location)
        if not path.exists():
            raise ResourceNotFound(f"No file at {location!r}.", location=location)
        if path.is_dir():
            raise UnsupportedResource(f"{location!r} is a directory, not a file.")
        kind = _SUFFIXES.get(path.suffix.lower())
        if kind == "json":
            kind = _kind_of_json(path)
        if kind is None:
            kind = _kind_of_text(path)
        return cls(kind, location)

    def _check(self) -> None:
        if self.kind == "sql" and not self.table:
            raise UnsupportedResource("An SQL resource needs a 'table'.", location=self.location)
        if self.is_file and not self.path.is_file():
            raise ResourceNotFound(f"No file at {self.location!r}.", location=self.location)


#: What names a source wherever one is asked for: a Resource, a path or URL, or its JSON form.
ResourceLike: TypeAlias = Resource | str | os.PathLike[str] | Mapping[str, Any]


def _kind_of_json(path: Path) -> str:
    """`json` (records), `jsonl`, `json_schema` or `openapi`, from the document's start."""
    with path.open("rb") as handle:
        head = handle.read(_PEEK_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if head.startswith("["):
        return "json"
    first_line = head.split("\n", 1)[0].strip()
    if first_line.startswith("{") and first_line.endswith("}") and "\n{" in head.strip():
        return "jsonl"
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "jsonl" if first_line.startswith("{") else "json"
    if isinstance(document, dict) and "openapi" in document:
        return "openapi"
    if isinstance(document, dict) and ("properties" in document or "$schema" in document):
        return "json_schema"
    return "json"


def _kind_of_text(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(_PEEK_BYTES)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    head = head.lstrip()
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"["):
        return "json"
    return "csv"
