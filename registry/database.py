"""The engine and transactions, for SQLite (the embedded default) and PostgreSQL.

SQLite writers take the write lock when their transaction begins (`BEGIN IMMEDIATE`), so two
processes never both read a row and then fail to upgrade to a write; WAL lets readers go on
meanwhile. An in-memory URL gets one shared connection, so a registry sees its own tables.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection, StaticPool

from .errors import DatabaseLimitExceeded
from .tables import catalog, registry_state

__all__ = ["POSTGRESQL_MAX_COLUMNS", "SQLITE_DEFAULT_MAX_COLUMNS", "Database", "driver_error",
           "driver_of"]

#: True while `Database.write` begins its transaction, so that SQLite's begin takes the
#: write lock at once (`BEGIN IMMEDIATE`). It is set around that one call only: any other
#: connection begun in the same thread meanwhile, a read inside a write say, begins as usual.
_BEGINNING_WRITE: ContextVar[bool] = ContextVar("dmr_beginning_write", default=False)

#: Seconds a SQLite connection waits for another process's write lock.
SQLITE_BUSY_TIMEOUT = 30
#: Seconds a pooled PostgreSQL connection may sit unused before it is pinged on checkout.
IDLE_PING_SECONDS = 10.0
#: Columns a PostgreSQL table may have (MaxHeapAttributeNumber; its own system columns such as
#: ctid and xmin are not among them).
POSTGRESQL_MAX_COLUMNS = 1600
#: SQLite's SQLITE_MAX_COLUMN unless the library was compiled with another (then read from
#: its compile options).
SQLITE_DEFAULT_MAX_COLUMNS = 2000


class Database:
    """Owns one engine. Create it after a worker process forks, never at import time."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        echo: bool = False,
        sqlite_synchronous: str = "full",
    ) -> None:
        self.url = sa.make_url(url)
        self.engine = _create_engine(
            self.url, pool_size=pool_size, echo=echo, sqlite_synchronous=sqlite_synchronous
        )
        self.dialect = self.engine.dialect.name

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @functools.cached_property
    def max_columns(self) -> int:
        """The most columns one table may have in this database."""
        if self.is_postgresql:
            return POSTGRESQL_MAX_COLUMNS
        if self.dialect != "sqlite":
            return POSTGRESQL_MAX_COLUMNS  # the smallest of the databases we know
        return _sqlite_max_columns()

    def check_table_width(self, model_name: str, table: sa.Table, fields: int) -> None:
        """Raise `DatabaseLimitExceeded` if `table` (a model's, `fields` of its columns being
        the model's fields) has more columns than this database allows."""
        limit = self.max_columns
        if len(table.columns) <= limit:
            return
        system = len(table.columns) - fields
        raise DatabaseLimitExceeded(
            f"Model {model_name!r} has {fields} fields; a table in this database "
            f"({self.dialect}) holds at most {limit} columns, {system} of which every record "
            f"table uses, so a model may have at most {limit - system} fields.",
            model=model_name,
            fields=fields,
            limit=limit - system,
            columns_limit=limit,
        )

    def create_catalog(self) -> None:
        """Create the catalog tables if they are missing; safe to run from many processes."""
        with self.write() as conn:
            if self.is_postgresql:
                # Serialise concurrent first starts: CREATE TABLE IF NOT EXISTS can still race.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727301)")
            catalog.create_all(conn, checkfirst=True)
            exists = conn.execute(sa.select(registry_state.c.version)).first()
            if exists is None:
                conn.execute(sa.insert(registry_state).values(id=1, version=0))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction, committed when the block ends cleanly."""
        with self.engine.connect() as conn:
            # Flagged for exactly the BEGIN below (SQLite's begin reads it); an execution
            # option on the connection cost more than the flag and its reset.
            flag = _BEGINNING_WRITE.set(True)
            try:
                transaction = conn.begin()
            finally:
                _BEGINNING_WRITE.reset(flag)
            with transaction:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a transaction that writes nothing (READ COMMITTED on PostgreSQL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction that sees one state of the whole database throughout
        (REPEATABLE READ on PostgreSQL; a SQLite read transaction already does)."""
        with self.engine.connect() as conn:
            if self.is_postgresql:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection in autocommit: for one read that needs no transaction around it."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def driver_autocommit(self) -> Iterator[Any]:
        """The driver's own connection in autocommit, for one statement that is its own
        transaction (PostgreSQL; see `DriverStatement`). Driver errors are raised as
        SQLAlchemy's (parameters hidden), and a connection found broken is not reused."""
        pooled = self.engine.raw_connection()
        driver = pooled.driver_connection
        assert driver is not None
        try:
            with _driver_errors(self.engine.dialect, pooled.dbapi_connection, pooled.invalidate):
                driver.autocommit = True
                yield driver
        finally:
            if not driver.closed:
                driver.autocommit = False  # as the pool hands connections out
            pooled.close()

    def for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows until commit; SQLite's write transaction already holds a lock."""
        return query.with_for_update() if self.is_postgresql else query

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def driver_of(conn: Connection, statement: str | None = None) -> Iterator[Any]:
    """The driver's connection under `conn` (see `DriverStatement`), for a statement whose
    SQLAlchemy execution costs more than the statement itself; `conn` keeps its transaction
    or autocommit. Driver errors are raised as SQLAlchemy's (`driver_error`)."""
    with _driver_errors(conn.dialect, conn.connection.dbapi_connection, conn.invalidate,
                        statement):
        yield conn.connection.driver_connection


def driver_error(conn: Connection, exc: Any, statement: str | None = None) -> BaseException:
    """A driver error met on `conn`'s driver connection as SQLAlchemy's, for a caller that
    catches it itself where a context manager would cost more than its statement
    (`DriverInsert`)."""
    return _as_sqlalchemy_error(conn.dialect, conn.connection.dbapi_connection,
                                conn.invalidate, exc, statement)


@contextmanager
def _driver_errors(
    dialect: sa.Dialect,
    dbapi_connection: Any,
    invalidate: Callable[[BaseException], Any],
    statement: str | None = None,
) -> Iterator[None]:
    """Raise driver errors as SQLAlchemy's (`_as_sqlalchemy_error`)."""
    dbapi_error: Any = dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise _as_sqlalchemy_error(dialect, dbapi_connection, invalidate, exc,
                                   statement) from exc


def _as_sqlalchemy_error(
    dialect: sa.Dialect,
    dbapi_connection: Any,
    invalidate: Callable[[BaseException], Any],
    exc: Any,
    statement: str | None,
) -> BaseException:
    """The driver error `exc` as SQLAlchemy's, naming `statement` and with the parameters
    hidden as the engine hides them (they are record values), after calling `invalidate`
    when the connection was found broken, so that it is not used again."""
    broken = dialect.is_disconnect(exc, dbapi_connection, None)
    if broken:
        invalidate(exc)
    error: BaseException = sa.exc.DBAPIError.instance(
        statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
        connection_invalidated=broken, dialect=dialect,
    )
    return error


def _sqlite_max_columns() -> int:
    # A limit of the SQLite library this process loaded, not of a database file: asked of a
    # throwaway in-memory connection, so no transaction of the engine's is disturbed.
    probe = sqlite3.connect(":memory:")
    try:
        options = [row[0] for row in probe.execute("PRAGMA compile_options")]
    finally:
        probe.close()
    for option in options:
        if str(option).startswith("MAX_COLUMN="):
            return int(str(option).split("=", 1)[1])
    return SQLITE_DEFAULT_MAX_COLUMNS


def _create_engine(
    url: sa.URL, *, pool_size: int, echo: bool, sqlite_synchronous: str
) -> Engine:
    # Statement parameters are record values, and may be secrets; errors and logs that quote
    # them can end up in task results (Invariant 4).
    if url.get_backend_name() != "sqlite":
        engine = sa.create_engine(url, pool_size=pool_size, echo=echo, hide_parameters=True)
        _ping_connections_that_sat_idle(engine)
        _read_times_in_utc(engine)
        return engine
    in_memory = url.database in (None, "", ":memory:")
    options: dict[str, Any] = {
        "echo": echo,
        "hide_parameters": True,
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT},
    }
    if in_memory:
        options["poolclass"] = StaticPool
    engine = sa.create_engine(url, **options)
    _take_over_sqlite_transactions(engine, wal=not in_memory, synchronous=sqlite_synchronous)
    return engine


def _ping_connections_that_sat_idle(engine: Engine) -> None:
    # pool_pre_ping would cost a round trip before every transaction, which is a third of a
    # create. A connection in steady use is known to be alive; only one that sat in the pool
    # longer than IDLE_PING_SECONDS is pinged, and replaced if the server has gone away (a
    # connection that dies while in use is invalidated by SQLAlchemy and the task retried).
    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["dmr_checked_in"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("dmr_checked_in")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:
            raise sa.exc.DisconnectionError("The pooled connection is gone.") from exc


def _read_times_in_utc(engine: Engine) -> None:
    # psycopg gives `timestamptz` values in the session's time zone. Every stored time is
    # UTC and `UTCDateTime` hands them out in UTC, so in any other zone (Etc/UTC included,
    # which is a ZoneInfo, not `datetime.UTC`) each value is converted twice, by the driver
    # and back again: a few hundred conversions per page of records. No statement of ours
    # depends on the session's zone.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET rolled back with its transaction would be undone


def _take_over_sqlite_transactions(engine: Engine, *, wal: bool, synchronous: str) -> None:
    # pysqlite begins transactions lazily and never as IMMEDIATE; SQLAlchemy documents taking
    # over BEGIN ourselves so that transactions mean what they say.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before it is acknowledged, power loss included.
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def _begin(connection: PoolProxiedConnection) -> None:
        # Straight to the driver: this runs for every transaction, and BEGIN needs nothing
        # from SQLAlchemy's statement machinery.
        write = _BEGINNING_WRITE.get()
        connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )

    # The dialect's own begin hook (pysqlite's does nothing), set on this engine's dialect
    # only, rather than a "begin" event: an engine with any event listener makes every
    # connection join its listeners and call them on begin and commit, which cost a third
    # of an empty transaction (10 to 14 microseconds of 30, measured with timeit).
    engine.dialect.do_begin = _begin  # type: ignore[method-assign,assignment]
