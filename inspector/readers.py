"""Source rows, streamed: the one way both inspection and imports read a resource.

    with inspector.open_rows("cars.csv") as rows:
        for row in rows:                 # SourceRow(number=1, values={"Name": "chevrolet", ...})
            ...

`open_rows(resource, field_map=None, options=None, on_bad_row="error", skip=0)` returns a
`RowReader`: a context manager and an iterator of `SourceRow(number, values, problem)`. Values
are raw: text for CSV/TSV (the empty string included), JSON values for JSON and JSON Lines,
driver values for SQL, Arrow's Python values for Parquet (the `parquet` extra). `number`
counts data rows from 1 in source order (the header and blank lines are not rows; an SQL table
is read in primary-key order, so numbers are stable between runs). Memory stays bounded
whatever the source's size: files are read line by line or in chunks, an SQL table through a
server-side cursor, a Parquet file in batches.

- `field_map` ({source name: field}) renames the columns it names and drops the others; it
  raises `UnknownSourceField` when it names a column that a CSV header or an SQL table lacks.
- `options` overrides the resource's own (`encoding`, `delimiter`, `quotechar`, `header`,
  `null_values`, `max_field_size`, `max_row_size`, `schema`, `batch_rows`); pass an inspection's
  `source.options` to read exactly as it did without sniffing again.
- `on_bad_row="report"` yields a row that cannot be read (a ragged CSV row, a JSON line that
  is not an object) as `SourceRow(number, values, problem="...")` instead of raising
  `RaggedRow` / `MalformedSource`, so an import can count it as rejected and go on.
- `skip` rows are read and dropped first (numbers keep counting), to resume after a row.

A field larger than `max_field_size` characters (CSV) or a JSON row larger than `max_row_size`
raises `FieldTooLarge`; bytes that do not decode raise `UnreadableEncoding`. `RowReader.options`
holds what was sniffed (encoding, delimiter, header), which the inspection records.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, NamedTuple, TextIO

from .errors import (
    FieldTooLarge,
    MalformedSource,
    RaggedRow,
    ResourceNotFound,
    UnknownSourceField,
    UnreadableEncoding,
    UnsupportedResource,
)
from .formats import DATE_FORMATS, parse_text
from .resources import Resource, ResourceLike

__all__ = ["RowReader", "SourceRow", "open_rows", "sniff_encoding"]

BadRow = Literal["error", "report"]
#: Bytes read to sniff a file's encoding, dialect and header.
SNIFF_BYTES = 256 * 1024
DEFAULT_MAX_FIELD_SIZE = 10_000_000
DEFAULT_MAX_ROW_SIZE = 16 * 1024 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_LINES = 100
_JSON_CHUNK = 64 * 1024
#: JSON whitespace, and a byte-order mark left by an encoding given without "-sig".
_BLANK = " \t\r\n\ufeff"
#: SQL rows fetched per round trip of the server-side cursor.
SQL_BATCH = 1000


class SourceRow(NamedTuple):
    """One source row: its number (from 1), its raw values, and why it is unreadable if so.

    A named tuple rather than a dataclass: millions are made per import, and a tuple is the
    cheapest object Python builds."""

    number: int
    values: dict[str, Any]
    problem: str | None = None


def open_rows(
    resource: ResourceLike,
    *,
    field_map: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    on_bad_row: BadRow = "error",
    skip: int = 0,
) -> RowReader:
    """Open `resource` for reading rows; see the module docstring."""
    found = Resource.of(resource)
    merged = {**found.options, **(options or {})}
    opener = _OPENERS.get(found.kind)
    if opener is None:
        raise UnsupportedResource(
            f"A {found.kind} resource describes a model and holds no rows to read.",
            kind=found.kind,
        )
    reader = opener(found, merged, on_bad_row)
    try:
        reader.apply_field_map(field_map)
    except BaseException:
        reader.close()
        raise
    reader.skip = skip
    return reader


class RowReader:
    """An open source: iterate for `SourceRow`s; close (or use `with`) to release it."""

    def __init__(self, resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> None:
        self.resource = resource
        self.options = options
        self.on_bad_row = on_bad_row
        #: Source column names when the source declares them (CSV header, SQL table).
        self.columns: list[str] | None = None
        self.skip = 0
        self._rename: dict[str, str] | None = None

    def apply_field_map(self, field_map: Mapping[str, str] | None) -> None:
        if field_map is None:
            return
        if self.columns is not None:
            unknown = sorted(set(field_map) - set(self.columns))
            if unknown:
                raise UnknownSourceField(
                    f"The field map names source columns {unknown} that "
                    f"{self.resource.display_location!r} does not have; it has {self.columns}.",
                    columns=unknown,
                )
        self._rename = dict(field_map)

    def __iter__(self) -> Iterator[SourceRow]:
        if not self.skip and self._rename is None:
            yield from self._rows()
            return
        for row in self._rows():
            if row.number <= self.skip:
                continue
            if self._rename is not None:
                values = {
                    self._rename[name]: value
                    for name, value in row.values.items()
                    if name in self._rename
                }
                row = SourceRow(row.number, values, row.problem)
            yield row

    def _rows(self) -> Iterator[SourceRow]:
        raise NotImplementedError

    def lists(self) -> Iterator[list[Any] | SourceRow]:
        """The rows as lists of values in `columns` order, the cheapest form for a consumer
        that sends rows on (an import); a row that cannot be read comes as its `SourceRow`
        (with `problem`), as `on_bad_row="report"` gives it. Rows are numbered by position.
        Only for a source that declares its columns (CSV, TSV, an SQL table, Parquet);
        raises `UnsupportedResource` for one that does not (JSON)."""
        columns = self.columns
        if columns is None:
            raise UnsupportedResource(
                f"{self.resource.display_location!r} declares no columns to order values by.",
            )
        for row in self:
            yield row if row.problem is not None else [row.values.get(c) for c in columns]

    def bad_row(self, error: MalformedSource, number: int, values: dict[str, Any]) -> SourceRow:
        if self.on_bad_row == "error":
            raise error
        return SourceRow(number, values, problem=error.message)

    def close(self) -> None:
        """Release the file or the database connection."""

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- text files


def sniff_encoding(head: bytes) -> str:
    """The encoding of a file that starts with `head`. Raises `UnreadableEncoding`."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return name
    if b"\x00" in head:
        return _utf16_without_bom(head)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: the single-byte encoding files from spreadsheets most often use. cp1252
    # leaves five bytes undefined, and binary data shows control characters.
    try:
        text = head.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise _unreadable(exc) from None
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\r\n\f")
    if controls > len(text) / 100:
        raise UnreadableEncoding(
            "The file is not text: it holds control bytes, and is neither UTF-8 nor cp1252.",
        )
    return "cp1252"


def _utf16_without_bom(head: bytes) -> str:
    even = head[0::2].count(0) / max(1, len(head[0::2]))
    odd = head[1::2].count(0) / max(1, len(head[1::2]))
    if odd > 0.4 and even < 0.05:
        return "utf-16-le"
    if even > 0.4 and odd < 0.05:
        return "utf-16-be"
    raise UnreadableEncoding("The file is not text: it holds NUL bytes and is not UTF-16.")


def _unreadable(exc: UnicodeDecodeError, where: str = "") -> UnreadableEncoding:
    return UnreadableEncoding(
        f"The file does not decode as {exc.encoding}{where}: byte "
        f"{exc.object[exc.start : exc.start + 1]!r} at offset {exc.start} ({exc.reason}).",
        encoding=exc.encoding,
    )


class _TextReader(RowReader):
    """A text file, opened with the encoding given or sniffed."""

    def __init__(self, resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> None:
        super().__init__(resource, options, on_bad_row)
        try:
            self._binary = resource.path.open("rb")
        except FileNotFoundError:
            raise ResourceNotFound(
                f"No file at {resource.location!r}.", location=resource.location
            ) from None
        try:
            self._open_text(options)
        except BaseException:
            self._binary.close()
            raise

    def _open_text(self, options: dict[str, Any]) -> None:
        head = self._binary.read(SNIFF_BYTES)
        self._binary.seek(0)
        encoding = options.get("encoding") or sniff_encoding(head)
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UnsupportedResource(f"Unknown encoding {encoding!r}.") from None
        self.options["encoding"] = encoding
        self.head = self._decode_head(head, encoding)
        self.text: TextIO = io.TextIOWrapper(self._binary, encoding=encoding, newline="")

    def _decode_head(self, head: bytes, encoding: str) -> str:
        try:
            return codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError as exc:
            raise _unreadable(exc) from None

    def close(self) -> None:
        self.text.close()


class _CsvReader(_TextReader):
    def __init__(self, resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> None:
        super().__init__(resource, options, on_bad_row)
        try:
            self._start(resource, options)
        except BaseException:
            self.close()
            raise

    def _start(self, resource: Resource, options: dict[str, Any]) -> None:
        self.max_field_size = int(options.get("max_field_size") or DEFAULT_MAX_FIELD_SIZE)
        csv.field_size_limit(self.max_field_size)
        sample = _complete_lines(self.head)
        if "delimiter" not in options:
            tsv = resource.kind == "tsv"
            options["delimiter"] = "\t" if tsv else _sniff_delimiter(sample)
        options.setdefault("quotechar", '"')
        if "header" not in options:
            options["header"] = _sniff_header(self._sample_rows(sample))
        self._reader = csv.reader(
            self.text, delimiter=options["delimiter"], quotechar=options["quotechar"]
        )
        self._number = 0
        first = self._next_fields()
        if first is None:
            self.columns = []
        elif options["header"]:
            self.columns = _column_names(first)
        else:
            self.columns = [f"column_{index}" for index in range(1, len(first) + 1)]
        # Without a header the first line is the first row, read again by `_rows`.
        self._pending = None if options["header"] else first

    def _sample_rows(self, sample: str) -> list[list[str]]:
        reader = csv.reader(
            io.StringIO(sample),
            delimiter=self.options["delimiter"],
            quotechar=self.options["quotechar"],
        )
        rows: list[list[str]] = []
        try:
            for fields in reader:
                if fields:
                    rows.append(fields)
                if len(rows) >= _SNIFF_LINES:
                    break
        except csv.Error:
            pass  # the sample may end inside a huge field; what was read decides
        return rows

    def _next_fields(self) -> list[str] | None:
        while True:
            try:
                fields = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                raise self._csv_error(exc) from None
            except UnicodeDecodeError as exc:
                raise _unreadable(exc, f" near line {self._reader.line_num + 1}") from None
            if fields:  # a blank line is not a row
                return fields

    def _csv_error(self, exc: csv.Error) -> MalformedSource:
        line = self._reader.line_num
        if "field larger than field limit" in str(exc):
            return FieldTooLarge(
                f"A field near line {line} of {self.resource.location!r} is larger than "
                f"{self.max_field_size} characters (option max_field_size).",
                line=line,
                limit=self.max_field_size,
            )
        return MalformedSource(
            f"Line {line} of {self.resource.location!r} is not valid CSV: {exc}.", line=line
        )

    def _rows(self) -> Iterator[SourceRow]:
        return self._scan(as_lists=False)  # type: ignore[return-value]

    def lists(self) -> Iterator[list[Any] | SourceRow]:
        if self.skip or self._rename is not None:
            return super().lists()
        return self._scan(as_lists=True)

    def _scan(self, *, as_lists: bool) -> Iterator[list[Any] | SourceRow]:
        assert self.columns is not None
        columns, width = self.columns, len(self.columns)
        if self._pending is not None:
            yield from self._listed(self._checked([self._pending], columns, width), as_lists)
            self._pending = None
        while True:
            try:
                # The hot loop: csv.reader in C, one tuple and one dict per row (none as lists).
                for fields in self._reader:
                    if len(fields) == width:
                        self._number += 1
                        yield fields if as_lists else SourceRow(
                            self._number, dict(zip(columns, fields, strict=True))
                        )
                    elif fields:
                        yield from self._listed(self._checked([fields], columns, width), as_lists)
                return
            except csv.Error as exc:
                raise self._csv_error(exc) from None
            except UnicodeDecodeError as exc:
                raise _unreadable(exc, f" near line {self._reader.line_num + 1}") from None

    @staticmethod
    def _listed(rows: Iterator[SourceRow], as_lists: bool) -> Iterator[list[Any] | SourceRow]:
        for row in rows:
            yield list(row.values.values()) if as_lists and row.problem is None else row

    def _checked(
        self, rows: list[list[str]], columns: list[str], width: int
    ) -> Iterator[SourceRow]:
        for fields in rows:
            self._number += 1
            if len(fields) == width:
                yield SourceRow(self._number, dict(zip(columns, fields, strict=True)))
                continue
            error = RaggedRow(
                f"Row {self._number} (line {self._reader.line_num}) of "
                f"{self.resource.location!r} has {len(fields)} fields; the header has {width}.",
                row=self._number,
                line=self._reader.line_num,
                expected=width,
                found=len(fields),
            )
            yield self.bad_row(error, self._number, dict(zip(columns, fields, strict=False)))


def _complete_lines(head: str) -> str:
    cut = head.rfind("\n")
    return head if cut < 0 else head[: cut + 1]


def _sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's lines into the most equal, widest rows."""
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        widths = []
        try:
            for fields in csv.reader(io.StringIO(sample), delimiter=delimiter):
                if fields:
                    widths.append(len(fields))
                if len(widths) >= _SNIFF_LINES:
                    break
        except csv.Error:
            continue
        if not widths:
            continue
        modal = max(set(widths), key=widths.count)
        score = (widths.count(modal) / len(widths), modal) if modal > 1 else (0.0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _sniff_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns rather than holding data."""
    if len(rows) < 2:
        return bool(rows) and not any(_looks_typed(value) for value in rows[0])
    first, body = rows[0], rows[1:]
    if any(_looks_typed(value) for value in first):
        return False
    for index in range(len(first)):
        column = [row[index] for row in body if index < len(row) and row[index].strip()]
        if column and all(_looks_typed(value) for value in column):
            return True
    # Every column is text: a header's names are distinct and do not recur as data.
    distinct = len(set(first)) == len(first) and all(name.strip() for name in first)
    recurs = any(
        index < len(row) and row[index] == name for index, name in enumerate(first) for row in body
    )
    return distinct and not recurs


def _looks_typed(value: str) -> bool:
    """Whether a cell reads as a number or a date, which a column name seldom does."""
    text = value.strip()
    attempts = [("number", None), *(("date", fmt) for fmt in DATE_FORMATS[:4])]
    for kind, fmt in attempts:
        try:
            parse_text(kind, fmt, text)
            return True
        except ValueError:
            continue
    return False


def _column_names(header: list[str]) -> list[str]:
    """Header cells as column names: blanks named by position, repeats numbered."""
    names: list[str] = []
    for index, cell in enumerate(header, start=1):
        name = cell.strip() or f"column_{index}"
        base, number = name, 2
        while name in names:
            name, number = f"{base}_{number}", number + 1
        names.append(name)
    return names


class _JsonLinesReader(_TextReader):
    def _rows(self) -> Iterator[SourceRow]:
        limit = int(self.options.get("max_row_size") or DEFAULT_MAX_ROW_SIZE)
        number = 0
        line_number = 0
        while True:
            try:
                line = self.text.readline(limit + 1)
            except UnicodeDecodeError as exc:
                raise _unreadable(exc, f" after line {line_number}") from None
            if not line:
                return
            line_number += 1
            if len(line) > limit and not line.endswith("\n"):
                raise FieldTooLarge(
                    f"Line {line_number} of {self.resource.location!r} is longer than {limit} "
                    "characters (option max_row_size).",
                    line=line_number,
                    limit=limit,
                )
            if not line.strip():
                continue
            number += 1
            yield self._row(number, line_number, line)

    def _row(self, number: int, line_number: int, line: str) -> SourceRow:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            error = MalformedSource(
                f"Line {line_number} of {self.resource.location!r} is not JSON: {exc.msg} at "
                f"column {exc.colno}.",
                row=number,
                line=line_number,
            )
            return self.bad_row(error, number, {})
        if not isinstance(value, dict):
            error = MalformedSource(
                f"Line {line_number} of {self.resource.location!r} holds a JSON "
                f"{type(value).__name__}; each line must be an object.",
                row=number,
                line=line_number,
            )
            return self.bad_row(error, number, {})
        return SourceRow(number, value)


class _JsonArrayReader(_TextReader):
    """A JSON array of objects, decoded one element at a time from a sliding buffer."""

    def _rows(self) -> Iterator[SourceRow]:
        limit = int(self.options.get("max_row_size") or DEFAULT_MAX_ROW_SIZE)
        decoder = json.JSONDecoder()
        buffer = _JsonBuffer(self.text, self.resource.location)
        if buffer.next_char() != "[":
            raise MalformedSource(
                f"{self.resource.location!r} does not hold a JSON array of objects.",
            )
        buffer.advance()
        number = 0
        if buffer.next_char() == "]":
            return
        while True:
            value = buffer.decode(decoder, limit, number + 1)
            number += 1
            if isinstance(value, dict):
                yield SourceRow(number, value)
            else:
                error = MalformedSource(
                    f"Element {number} of {self.resource.location!r} is a JSON "
                    f"{type(value).__name__}, not an object.",
                    row=number,
                )
                yield self.bad_row(error, number, {})
            separator = buffer.next_char()
            buffer.advance()
            if separator == "]":
                return
            if separator != ",":
                raise MalformedSource(
                    f"{self.resource.location!r}: expected ',' or ']' after element {number}, "
                    f"found {separator or 'the end of the file'!r}.",
                    row=number,
                )


class _JsonBuffer:
    def __init__(self, text: TextIO, location: str) -> None:
        self.text = text
        self.location = location
        self.buffer = ""
        self.position = 0
        self.eof = False

    def _fill(self, size: int = _JSON_CHUNK) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.text.read(size)
        except UnicodeDecodeError as exc:
            raise _unreadable(exc) from None
        if not chunk:
            self.eof = True
            return False
        self.buffer = self.buffer[self.position :] + chunk
        self.position = 0
        return True

    def next_char(self) -> str:
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in _BLANK:
                self.position += 1
            if self.position < len(self.buffer):
                return self.buffer[self.position]
            if not self._fill():
                return ""

    def advance(self) -> None:
        self.position += 1

    def decode(self, decoder: json.JSONDecoder, limit: int, number: int) -> Any:
        self.next_char()
        size = _JSON_CHUNK
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                if len(self.buffer) - self.position > limit:
                    raise FieldTooLarge(
                        f"Element {number} of {self.location!r} is larger than {limit} "
                        "characters (option max_row_size).",
                        row=number,
                        limit=limit,
                    ) from None
                if not self._fill(size):
                    raise MalformedSource(
                        f"Element {number} of {self.location!r} is not valid JSON: {exc.msg}.",
                        row=number,
                    ) from None
                size *= 2  # a large element is read in growing steps, not decoded per chunk
                continue
            self.position = end
            return value


# --------------------------------------------------------------------------- SQL tables


class _SqlReader(RowReader):
    """An SQL table through a server-side cursor, in primary-key order."""

    def __init__(self, resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> None:
        super().__init__(resource, options, on_bad_row)
        from .sql import connect, reflect_table

        self.engine = connect(resource.location)
        try:
            self.table = reflect_table(self.engine, resource.table or "", options.get("schema"))
        except BaseException:
            self.engine.dispose()
            raise
        self.columns = [column.name for column in self.table.columns]

    def _rows(self) -> Iterator[SourceRow]:
        import sqlalchemy as sa

        order = list(self.table.primary_key.columns) or list(self.table.columns)[:1]
        query = sa.select(self.table).order_by(*order)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=SQL_BATCH).execute(query)
            for number, row in enumerate(result.mappings(), start=1):
                yield SourceRow(number, dict(row))

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------- Parquet


def _open_parquet(resource: Resource, options: dict[str, Any], on_bad_row: BadRow) -> RowReader:
    # pyarrow (an optional extra) loads only when a Parquet file is read, never for the rest.
    from .parquet import ParquetReader

    return ParquetReader(resource, options, on_bad_row)


_OPENERS: dict[str, Callable[[Resource, dict[str, Any], BadRow], RowReader]] = {
    "csv": _CsvReader,
    "tsv": _CsvReader,
    "jsonl": _JsonLinesReader,
    "json": _JsonArrayReader,
    "sql": _SqlReader,
    "parquet": _open_parquet,
}
