"""SQL tables by reflection: column types, lengths, precision and scale, nullability, primary
key, unique columns, enum and IN-list check constraints, and column comments.

Reflection decides each field's type; the sampled rows add what the catalog cannot say (null
fraction, distinct values, range, examples) and, for text columns only, a format every sampled
value has (an email column becomes `format: email`). Enums come only from the database's own
constraints: a text column with few values today may get new ones tomorrow.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from .errors import ResourceNotFound, SourceUnavailable, UnsupportedResource
from .infer import ColumnResult, InferenceOptions, infer_column
from .spec import FieldSpec

__all__ = ["connect", "reflect_columns", "reflect_table"]

_LITERAL = re.compile(r"'((?:[^']|'')*)'")
#: `status IN ('a', 'b')` (SQLite, MariaDB) and `(status)::text = ANY (ARRAY[...])` (PostgreSQL).
_IN_LIST = re.compile(
    r"^\(*\s*[`\"\[]?(\w+)[`\"\]]?\s+IN\s*\((.*)\)\s*\)*$", re.IGNORECASE | re.DOTALL
)
_ANY_ARRAY = re.compile(
    r"^\(*\s*\(?\"?(\w+)\"?\)?(::\w+(\s\w+)?)?\s*=\s*ANY\s*\((.*)\)\s*\)*$", re.DOTALL
)
#: Text formats that may refine a text column when every sampled value has them.
_TEXT_REFINEMENTS = frozenset({"email", "url", "uuid", "date", "datetime", "datetime_tz", "time"})
_INTEGER_BOUNDS = {
    sa.SmallInteger: (-(2**15), 2**15 - 1),
    sa.BigInteger: (-(2**63), 2**63 - 1),
}


def connect(url: str) -> Engine:
    """An engine for `url` that holds no pooled connections. Raises `UnsupportedResource`."""
    try:
        return sa.create_engine(url, poolclass=NullPool)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise UnsupportedResource(f"SQLAlchemy cannot open {url!r}: {exc}.") from None


def reflect_table(engine: Engine, name: str, schema: str | None = None) -> sa.Table:
    """The table as the database describes it. Raises `ResourceNotFound`."""
    try:
        return sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema)
    except sa.exc.NoSuchTableError:
        raise ResourceNotFound(
            f"No table {name!r} in {engine.url.render_as_string(hide_password=True)!r}.",
            table=name,
        ) from None
    except sa.exc.OperationalError as exc:
        raise SourceUnavailable(
            f"Cannot reach {engine.url.render_as_string(hide_password=True)!r}: {exc.orig}.",
        ) from None


def reflect_columns(
    engine: Engine, table: sa.Table, samples: dict[str, list[Any]], options: InferenceOptions
) -> dict[str, ColumnResult]:
    """column name -> its field, from the catalog and the sampled values."""
    unique = _unique_columns(engine, table)
    enums = _check_enums(engine, table)
    results: dict[str, ColumnResult] = {}
    for column in table.columns:
        sampled = infer_column(column.name, samples.get(column.name, []), options)
        result = _column(engine, column, sampled, enums.get(column.name))
        result.facts["unique"] = column.name in unique or (
            len(table.primary_key.columns) == 1 and column.primary_key
        )
        if column.primary_key:
            result.facts["primary_key"] = True
        results[column.name] = result
    return results


def _column(
    engine: Engine, column: sa.Column[Any], sampled: ColumnResult, enum: list[str] | None
) -> ColumnResult:
    spec, warning = _spec_of_type(engine, column.type, column.name)
    warnings = [warning] if warning else []
    if spec is None:
        return ColumnResult(FieldSpec("any"), {"skipped": True}, warnings)
    if enum is not None and spec.kind == "string":
        spec = FieldSpec("enum", enum=enum)
    if spec.kind == "string" and sampled.spec.kind in _TEXT_REFINEMENTS:
        if sampled.facts.get("confidence") == 1.0:
            spec = FieldSpec(sampled.spec.kind)
    spec.nullable = bool(column.nullable)
    spec.description = column.comment or None
    facts = {
        key: value
        for key, value in sampled.facts.items()
        if key in ("null_fraction", "distinct", "examples", "min", "max", "format", "max_length")
    }
    if spec.kind not in ("string", "email", "url", "uuid") and sampled.spec.kind == "string":
        facts.pop("min", None)
        facts.pop("max", None)
    facts.update(
        inferred_type=spec.kind,
        confidence=1.0,
        sql_type=_type_name(engine, column.type),
    )
    if spec.kind not in ("date", "datetime", "datetime_tz", "time"):
        facts.pop("format", None)
    return ColumnResult(spec, facts, warnings)


def _type_name(engine: Engine, sql_type: Any) -> str:
    try:
        return str(sql_type.compile(dialect=engine.dialect))
    except sa.exc.CompileError:
        return type(sql_type).__name__


def _spec_of_type(engine: Engine, sql_type: Any, name: str) -> tuple[FieldSpec | None, str]:
    """The spec a column type proposes, or None and a warning when no field can hold it."""
    if isinstance(sql_type, sa.Enum) and sql_type.enums:
        return FieldSpec("enum", enum=list(sql_type.enums)), ""
    if isinstance(sql_type, sa.Boolean) or _is_mysql_flag(sql_type):
        return FieldSpec("boolean"), ""
    if isinstance(sql_type, sa.Integer):
        return _integer(engine, sql_type), ""
    if isinstance(sql_type, sa.Float):
        return FieldSpec("number"), ""
    if isinstance(sql_type, sa.Numeric):
        scale = sql_type.scale if sql_type.precision is not None else None
        return FieldSpec("decimal", max_digits=sql_type.precision, decimal_places=scale), ""
    if isinstance(sql_type, sa.DateTime):
        return FieldSpec("datetime_tz" if sql_type.timezone else "datetime"), ""
    if isinstance(sql_type, sa.Date):
        return FieldSpec("date"), ""
    if isinstance(sql_type, sa.Time):
        return FieldSpec("time"), ""
    if isinstance(sql_type, sa.Uuid):
        return FieldSpec("uuid"), ""
    if isinstance(sql_type, sa.JSON):
        return FieldSpec("any"), ""
    if isinstance(sql_type, sa.ARRAY):
        item, warning = _spec_of_type(engine, sql_type.item_type, name)
        return FieldSpec("array", items=item), warning
    if isinstance(sql_type, sa.String):
        return FieldSpec("string", max_length=sql_type.length), ""
    if isinstance(sql_type, sa.Interval):
        return FieldSpec("string"), f"Column {name!r} is an interval; it is read as text."
    return None, (
        f"Column {name!r} has type {_type_name(engine, sql_type)}, which no field type stores; "
        "it is left out."
    )


def _is_mysql_flag(sql_type: Any) -> bool:
    return type(sql_type).__name__ == "TINYINT" and getattr(sql_type, "display_width", None) == 1


def _integer(engine: Engine, sql_type: Any) -> FieldSpec:
    if getattr(sql_type, "unsigned", False):
        return FieldSpec("integer", minimum=0)
    for kind, (low, high) in _INTEGER_BOUNDS.items():
        if isinstance(sql_type, kind):
            return FieldSpec("integer", minimum=low, maximum=high)
    if engine.dialect.name == "sqlite":  # SQLite's INTEGER holds 64 bits
        return FieldSpec("integer", minimum=-(2**63), maximum=2**63 - 1)
    return FieldSpec("integer", minimum=-(2**31), maximum=2**31 - 1)


def _unique_columns(engine: Engine, table: sa.Table) -> set[str]:
    found: set[str] = set()
    inspector = sa.inspect(engine)
    for constraint in inspector.get_unique_constraints(table.name, schema=table.schema):
        if len(constraint["column_names"]) == 1:
            found.add(constraint["column_names"][0])
    for index in inspector.get_indexes(table.name, schema=table.schema):
        names = index["column_names"]
        if index.get("unique") and len(names) == 1 and names[0] is not None:
            found.add(names[0])
    if engine.dialect.name == "sqlite":
        found |= _sqlite_unique_columns(engine, table.name)
    return found


def _sqlite_unique_columns(engine: Engine, table: str) -> set[str]:
    """Columns declared UNIQUE inline, whose automatic indexes reflection does not report."""
    found: set[str] = set()
    with engine.connect() as conn:
        quoted = table.replace('"', '""')
        for index in conn.exec_driver_sql(f'PRAGMA index_list("{quoted}")').mappings():
            if not index["unique"]:
                continue
            name = str(index["name"]).replace('"', '""')
            columns = conn.exec_driver_sql(f'PRAGMA index_info("{name}")').mappings().all()
            if len(columns) == 1:
                found.add(str(columns[0]["name"]))
    return found


def _check_enums(engine: Engine, table: sa.Table) -> dict[str, list[str]]:
    """column -> values, from check constraints of the form `column IN ('a', 'b')`."""
    try:
        checks = [
            str(check.get("sqltext", ""))
            for check in sa.inspect(engine).get_check_constraints(table.name, schema=table.schema)
        ]
    except NotImplementedError:
        checks = []
    if engine.dialect.name in ("mysql", "mariadb"):
        checks += _mysql_checks(engine, table.name)
    found: dict[str, list[str]] = {}
    for check in checks:
        text = check.strip()
        match = _IN_LIST.match(text) or _ANY_ARRAY.match(text)
        if match is None:
            continue
        column, body = match.group(1), match.groups()[-1]
        values = [value.replace("''", "'") for value in _LITERAL.findall(body)]
        if column in table.columns and values:
            found[column] = values
    return found


#: Reflection misses checks declared inline on a MariaDB column; the catalog has them all.
_MYSQL_CHECKS = sa.text(
    "SELECT cc.CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS cc"
    " JOIN information_schema.TABLE_CONSTRAINTS tc"
    " ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA"
    " AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME AND tc.TABLE_NAME = :table"
    " WHERE tc.CONSTRAINT_SCHEMA = DATABASE() AND tc.CONSTRAINT_TYPE = 'CHECK'"
)


def _mysql_checks(engine: Engine, table: str) -> list[str]:
    try:
        with engine.connect() as conn:
            return [str(text) for text in conn.execute(_MYSQL_CHECKS, {"table": table}).scalars()]
    except sa.exc.DBAPIError:  # a server too old to keep check constraints
        return []
