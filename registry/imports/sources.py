"""An import's source on the producer's side: the inspector's row readers, as chunks of lists.

Reading is the inspector's (`inspector.open_rows`): the same sniffing of encoding, dialect and
header, the same kinds (CSV or TSV, JSON Lines, a JSON array, Parquet when its extra is
installed, an SQL table through a server-side cursor) and the same limits as the inspection
that proposed the model, streamed so memory stays flat. This module only turns its
`SourceRow`s into what a chunk carries: a list of values in column order, numbered from 1 (the
first data row), or, for a row the reader could not read (a ragged CSV row, a JSON line that
is not an object), `{"problem", "values"}` so the worker keeps it as a rejected row. Nothing
here needs the workers: they receive the chunks.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SourceUnreadable
from .jobs import SourceDescription

if TYPE_CHECKING:  # the registry loads the inspector only when a source is read
    import inspector

__all__ = ["OpenedSource", "chunked", "open_source"]

_HASH_BLOCK = 1 << 20
#: Keys of a source mapping that describe the import, not how to read the resource.
_IMPORT_KEYS = ("formats",)
#: Kinds whose values are text already (the rest may hold dates, decimals... to send as JSON).
_TEXT_KINDS = frozenset({"csv", "tsv"})


@dataclass
class OpenedSource:
    """A source ready to stream: its description (sent with `imports.start`) and rows."""

    kind: str
    location: str
    columns: list[str]
    reader: inspector.RowReader
    table: str | None = None
    sha256: str | None = None
    formats: dict[str, str] = field(default_factory=dict)
    #: Rows read to learn the columns (JSON sources), sent first.
    peeked: list[inspector.SourceRow] = field(default_factory=list)
    #: The reader's one iterator (a second would start its parse again): lists in column
    #: order (`RowReader.lists`) when the source declares its columns, else `SourceRow`s.
    stream: Iterator[list[Any] | inspector.SourceRow] = iter(())

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file or connection, whether or not every row was read."""
        self.reader.close()

    def description(self) -> dict[str, Any]:
        return SourceDescription(
            kind=self.kind, location=self.location, table=self.table, sha256=self.sha256,
            columns=self.columns, formats=self.formats,
        ).model_dump(mode="json")

    def rows(self) -> Iterator[list[Any] | dict[str, Any]]:
        """Each row as a list in column order, or `{"problem", "values"}`. Raises
        `SourceUnreadable` when the source cannot be read on (bad bytes, a huge field)."""
        from inspector import InspectorError

        columns = self.columns
        jsonable = self.kind not in _TEXT_KINDS  # SQL and Parquet give driver values
        try:
            for row in itertools.chain(self.peeked, self.stream):
                if isinstance(row, list):  # the common case: a readable row, in column order
                    yield [_jsonable(v) for v in row] if jsonable else row
                elif row.problem is not None:
                    yield {"problem": row.problem,
                           "values": [_jsonable(v) for v in row.values.values()]}
                else:  # JSON: an object, its values by the columns' names
                    yield [row.values.get(c) for c in columns]
        except InspectorError as exc:
            raise _unreadable(exc) from None


def open_source(
    resource: str | os.PathLike[str] | Mapping[str, Any], *, max_field_bytes: int = 1 << 20
) -> OpenedSource:
    """Open a resource; raises `SourceUnreadable` when it is missing or cannot be read."""
    import inspector

    spec: Any = resource
    formats: dict[str, str] = {}
    if isinstance(resource, Mapping):
        spec = {k: v for k, v in resource.items() if k not in _IMPORT_KEYS}
        formats = dict(resource.get("formats") or {})
    try:
        found = inspector.Resource.of(spec)
        reader = inspector.open_rows(found, on_bad_row="report", options={
            "max_field_size": max_field_bytes, "max_row_size": max_field_bytes,
        })
    except inspector.InspectorError as exc:
        raise _unreadable(exc) from None
    try:
        return _opened(found, reader, formats)
    except BaseException:
        reader.close()
        raise


def _opened(
    found: inspector.Resource, reader: inspector.RowReader, formats: dict[str, str]
) -> OpenedSource:
    from inspector import InspectorError

    peeked: list[inspector.SourceRow] = []
    columns = reader.columns
    stream: Iterator[Any] = reader.lists() if columns is not None else iter(reader)
    if columns is None:  # JSON: the first readable row's keys name the columns
        try:
            for row in stream:
                peeked.append(row)
                if row.problem is None:
                    break
        except InspectorError as exc:
            raise _unreadable(exc) from None
        columns = list(peeked[-1].values) if peeked and peeked[-1].problem is None else []
    if not columns:
        raise SourceUnreadable(
            f"The source {found.display_location!r} is empty: it has no columns to import.",
            location=found.display_location,
        )
    file = found.is_file
    return OpenedSource(
        kind=found.kind, location=os.path.abspath(found.location) if file else
        found.display_location, table=found.table, columns=list(columns), reader=reader,
        sha256=_file_hash(found.location) if file else None, formats=formats, peeked=peeked,
        stream=stream,
    )


def chunked(
    rows: Iterator[list[Any] | dict[str, Any]], size: int
) -> Iterator[tuple[int, list[Any]]]:
    """`(first row number, rows)` per chunk of `size` rows."""
    first, chunk = 1, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield first, chunk
            first, chunk = first + size, []
    if chunk:
        yield first, chunk


def _unreadable(exc: inspector.InspectorError) -> SourceUnreadable:
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | None)}
    return SourceUnreadable(exc.message, reason=type(exc).__name__, **details)


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
