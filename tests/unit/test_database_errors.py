"""Which database errors are retried as outages (registry.database_errors), and the width check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc

from registry import DynamicModelRegistry
from registry.database_errors import database_limit_error, is_outage
from registry.errors import DatabaseLimitExceeded
from registry.settings import Settings


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.OperationalError(
        "INSERT ...", {}, orig, connection_invalidated=invalidated  # type: ignore[arg-type]
    )


def sqlite_error(message: str, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name
    return error


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.OperationalError("connection refused"),  # no SQLSTATE: never reached the server
        psycopg.errors.AdminShutdown(),
        psycopg.errors.CannotConnectNow(),
        psycopg.errors.TooManyConnections(),
        psycopg.errors.SerializationFailure(),
        psycopg.errors.DeadlockDetected(),
        psycopg.errors.LockNotAvailable(),
        sqlite_error("database is locked", "SQLITE_BUSY"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_failures_and_contention_are_outages(orig: BaseException) -> None:
    assert is_outage(wrapped(orig))
    assert database_limit_error(wrapped(orig)) is None


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.TooManyColumns(),
        psycopg.errors.ProgramLimitExceeded(),
        psycopg.errors.StatementTooComplex(),
        sqlite_error("too many columns on dmr_r_wide", "SQLITE_ERROR"),
        sqlite_error("string or blob too big", "SQLITE_TOOBIG"),
    ],
    ids=lambda error: type(error).__name__ + str(error)[:8],
)
def test_database_limits_are_typed_errors_at_once(orig: BaseException) -> None:
    assert not is_outage(wrapped(orig))
    limit = database_limit_error(wrapped(orig))
    assert isinstance(limit, DatabaseLimitExceeded) and "nothing was written" in str(limit)


def test_other_refusals_are_neither() -> None:
    error = wrapped(psycopg.errors.QueryCanceled())
    assert not is_outage(error) and database_limit_error(error) is None
    assert is_outage(wrapped(psycopg.errors.QueryCanceled(), invalidated=True))
    assert is_outage(sqlalchemy.exc.TimeoutError()) and is_outage(ConnectionError())
    assert not is_outage(ValueError())


def test_a_model_too_wide_for_sqlite_is_refused_naming_the_limit(tmp_path: Path) -> None:
    settings = Settings.load(environ={"DMR_DATABASE_URL": f"sqlite:///{tmp_path}/w.sqlite3"})
    registry = DynamicModelRegistry(settings=settings)
    limit = registry.database.max_columns
    schema = {"type": "object", "properties": {f"f{i}": {"type": "integer"} for i in range(limit)}}
    try:
        with pytest.raises(DatabaseLimitExceeded, match=f"at most {limit} columns") as refused:
            registry.register_schema("Wide", schema)
        assert refused.value.details["fields"] == limit
        assert refused.value.details["limit"] < limit
        assert "Wide" not in {model["name"] for model in registry.list_models()}
    finally:
        registry.close()


def test_a_driver_insert_error_names_its_statement_and_hides_the_values() -> None:
    """`DriverInsert` runs on the driver under SQLAlchemy; its errors are SQLAlchemy's, and,
    as the engine's own, never quote the row's values (they may be secrets)."""
    from registry.database import Database
    from registry.driver_insert import DriverInsert

    table = sqlalchemy.Table("t", sqlalchemy.MetaData(),
                             sqlalchemy.Column("k", sqlalchemy.String, primary_key=True))
    database = Database("sqlite://")
    table.create(database.engine)
    insert = DriverInsert(table)
    with database.write() as conn:
        insert(conn, {"k": "secret-value"})
    with pytest.raises(sqlalchemy.exc.IntegrityError) as caught, database.write() as conn:
        insert(conn, {"k": "secret-value"})
    assert "INSERT INTO" in str(caught.value)
    assert "secret-value" not in str(caught.value)
    with pytest.raises(sqlalchemy.exc.IntegrityError) as caught, database.write() as conn:
        insert.many(conn, ["k"], [["other-secret", "other-secret"]])
    assert "other-secret" not in str(caught.value)
