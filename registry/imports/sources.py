"""Reading an import's source on the producer's side, as a stream of raw rows.

A resource is a file path (CSV or TSV, JSON Lines) or `{"kind", "location", "table"?,
"options"?}`; an SQL source is a SQLAlchemy URL and a table, read with a server-side cursor
so a table larger than memory streams through. Rows are lists in column order, numbered
from 1 (the first data row). Nothing here needs the workers: they receive the rows in chunks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import SourceUnreadable
from .jobs import SourceDescription

__all__ = ["OpenedSource", "chunked", "open_source"]

#: Rows fetched per round trip from an SQL source.
_SQL_BATCH = 5000
_HASH_BLOCK = 1 << 20


@dataclass
class OpenedSource:
    """A source ready to stream: its description (sent with `imports.start`) and rows."""

    kind: str
    location: str
    columns: list[str]
    table: str | None = None
    sha256: str | None = None
    formats: dict[str, str] = field(default_factory=dict)
    _rows: Iterator[list[Any]] | None = None
    _close: Callable[[], None] | None = None

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file or connection, whether or not every row was read."""
        if self._rows is not None and hasattr(self._rows, "close"):
            self._rows.close()
        if self._close is not None:
            self._close()

    def description(self) -> dict[str, Any]:
        return SourceDescription(
            kind=self.kind, location=self.location, table=self.table, sha256=self.sha256,
            columns=self.columns, formats=self.formats,
        ).model_dump(mode="json")

    def rows(self) -> Iterator[list[Any]]:
        assert self._rows is not None
        return self._rows


def open_source(
    resource: str | os.PathLike[str] | Mapping[str, Any], *, max_field_bytes: int = 1 << 20
) -> OpenedSource:
    """Open a resource; raises `SourceUnreadable` when it is missing or cannot be read."""
    spec = _spec(resource)
    kind = spec["kind"]
    if kind in ("csv", "tsv"):
        return _open_csv(spec, max_field_bytes, tab=kind == "tsv")
    if kind == "jsonl":
        return _open_jsonl(spec)
    if kind == "sql":
        return _open_sql(spec)
    raise SourceUnreadable(f"Imports cannot read sources of kind {kind!r}.", kind=kind)


def chunked(rows: Iterator[list[Any]], size: int) -> Iterator[tuple[int, list[list[Any]]]]:
    """`(first row number, rows)` per chunk of `size` rows."""
    first, chunk = 1, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield first, chunk
            first, chunk = first + size, []
    if chunk:
        yield first, chunk


def _spec(resource: Any) -> dict[str, Any]:
    if isinstance(resource, Mapping):
        spec = dict(resource)
        if not isinstance(spec.get("kind"), str) or not isinstance(spec.get("location"), str):
            raise SourceUnreadable("A source needs a 'kind' and a 'location'.")
        return spec
    location = os.fspath(resource)
    suffix = os.path.splitext(location)[1].lower()
    kind = {".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "csv")
    return {"kind": kind, "location": location}


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _opened_text(path: str, encoding: str) -> io.TextIOWrapper:
    try:
        return open(path, encoding=encoding, newline="")
    except FileNotFoundError:
        raise SourceUnreadable(f"The source file {path!r} does not exist.", location=path) from None
    except OSError as exc:
        raise SourceUnreadable(f"The source file {path!r} cannot be read: {exc.strerror}.",
                               location=path) from None


def _open_csv(spec: Mapping[str, Any], max_field_bytes: int, *, tab: bool) -> OpenedSource:
    path = spec["location"]
    options = spec.get("options") or {}
    encoding = options.get("encoding", "utf-8-sig")
    handle = _opened_text(path, encoding)
    delimiter = options.get("delimiter", "\t" if tab else None)
    try:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
    except UnicodeDecodeError:
        handle.close()
        raise SourceUnreadable(
            f"The source file {path!r} is not {encoding} text; give its encoding in the "
            "source's options.", location=path,
        ) from None
    csv.field_size_limit(max_field_bytes)
    reader = csv.reader(handle, delimiter=delimiter)
    header = _header(reader, path)
    return OpenedSource(
        kind="tsv" if tab else "csv", location=os.path.abspath(path), columns=header,
        sha256=_file_hash(path), formats=dict(spec.get("formats") or {}),
        _rows=_csv_rows(reader, handle, path), _close=handle.close,
    )


def _header(reader: Any, path: str) -> list[str]:
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise SourceUnreadable(f"The source file {path!r} is empty.", location=path) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SourceUnreadable(f"The header of {path!r} cannot be read: {exc}.",
                               location=path) from None
    if not header or len(set(header)) != len(header):
        raise SourceUnreadable(f"The header of {path!r} is empty or names a column twice.",
                               location=path)
    return header


def _csv_rows(reader: Any, handle: io.TextIOWrapper, path: str) -> Iterator[list[Any]]:
    with handle:
        try:
            yield from reader
        except csv.Error as exc:
            raise SourceUnreadable(
                f"Row {reader.line_num - 1} of {path!r} cannot be read: {exc}.",
                location=path, row=reader.line_num - 1,
            ) from None
        except UnicodeDecodeError:
            raise SourceUnreadable(
                f"Row {reader.line_num} of {path!r} is not valid text in the source's encoding.",
                location=path, row=reader.line_num,
            ) from None


def _open_jsonl(spec: Mapping[str, Any]) -> OpenedSource:
    path = spec["location"]
    handle = _opened_text(path, (spec.get("options") or {}).get("encoding", "utf-8"))
    first = handle.readline()
    handle.seek(0)
    try:
        columns = list(json.loads(first)) if first.strip() else []
    except (ValueError, TypeError):
        raise SourceUnreadable(f"The first line of {path!r} is not a JSON object.",
                               location=path) from None
    if not columns:
        raise SourceUnreadable(f"The source file {path!r} is empty.", location=path)
    return OpenedSource(kind="jsonl", location=os.path.abspath(path), columns=columns,
                        sha256=_file_hash(path), _rows=_jsonl_rows(handle, columns, path),
                        _close=handle.close)


def _jsonl_rows(handle: io.TextIOWrapper, columns: list[str], path: str) -> Iterator[list[Any]]:
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise SourceUnreadable(f"Line {number} of {path!r} is not JSON.",
                                       location=path, row=number) from None
            yield [item.get(c) for c in columns] if isinstance(item, dict) else [item]


def _open_sql(spec: Mapping[str, Any]) -> OpenedSource:
    table_name = spec.get("table")
    if not isinstance(table_name, str):
        raise SourceUnreadable("An SQL source needs a 'table'.")
    try:
        engine = sa.create_engine(spec["location"])
        table = sa.Table(table_name, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceUnreadable(f"The database has no table {table_name!r}.",
                               table=table_name) from None
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        raise SourceUnreadable(f"The SQL source cannot be opened ({type(exc).__name__}).",
                               table=table_name) from None
    columns = [column.name for column in table.columns]
    return OpenedSource(kind="sql", location=engine.url.render_as_string(hide_password=True),
                        table=table_name, columns=columns, _rows=_sql_rows(engine, table),
                        _close=engine.dispose)


def _sql_rows(engine: sa.Engine, table: sa.Table) -> Iterator[list[Any]]:
    # stream_results keeps the rows on the server (a named cursor on PostgreSQL) and yield_per
    # fetches them in batches: memory stays flat whatever the table's size.
    order = list(table.primary_key.columns) or list(table.columns)
    query = sa.select(table).order_by(*order)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_SQL_BATCH).execute(
                query
            )
            for row in result:
                yield [_jsonable(value) for value in row]
    finally:
        engine.dispose()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict | list):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
