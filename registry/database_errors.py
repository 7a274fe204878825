"""Which database errors are outages that a later attempt can get past, and which are not.

psycopg raises nearly every server error as `OperationalError`: a dropped connection, but also
`TooManyColumns` and `ProgramLimitExceeded`, which no retry can fix. Retrying by class alone
turned a too-wide model into five retries and a false "database could not be reached". The
SQLSTATE (PostgreSQL) or SQLite's error name decides instead:

- outages: no connection (no SQLSTATE; class 08), the server shutting down or starting
  (57P01-57P03), too many connections or no memory (53), a connection SQLAlchemy found dead,
  and contention that the next attempt clears (serialization failure, deadlock, lock not
  available; SQLite busy or locked);
- the database's own limits (class 54; SQLite's too many columns, too big, too many
  variables): `DatabaseLimitExceeded`, the caller's to change;
- anything else: a fault to report, not to retry.
"""

from __future__ import annotations

import sqlalchemy.exc

from .errors import DatabaseLimitExceeded

__all__ = ["database_limit_error", "is_outage"]

_OUTAGE_CLASSES = ("08", "53")
_OUTAGE_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "55P03"})
_LIMIT_CLASS = "54"
_SQLITE_OUTAGES = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR"})
_SQLITE_LIMIT_NAMES = frozenset({"SQLITE_TOOBIG", "SQLITE_FULL"})
_SQLITE_LIMIT_MESSAGES = ("too many columns", "too many SQL variables", "too many terms")


def is_outage(exc: BaseException) -> bool:
    """Whether running the same operation again later could succeed."""
    if isinstance(exc, ConnectionError | sqlalchemy.exc.TimeoutError):
        return True
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.InterfaceError):
        return True
    if not isinstance(exc, sqlalchemy.exc.OperationalError):
        return False
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _OUTAGE_CLASSES or state in _OUTAGE_STATES
    sqlite_name = getattr(exc.orig, "sqlite_errorname", None)
    if sqlite_name is not None:
        return bool(sqlite_name in _SQLITE_OUTAGES)
    # No SQLSTATE from psycopg: the failure happened before the server answered (connect,
    # send, receive).
    return True


def database_limit_error(exc: BaseException) -> DatabaseLimitExceeded | None:
    """The typed error for a database limit that `exc` reports, or None if it is not one."""
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return None
    state = _sqlstate(exc)
    cause = type(exc.orig).__name__
    if state is not None and state.startswith(_LIMIT_CLASS):
        return _limit(cause, state)
    sqlite_name = getattr(exc.orig, "sqlite_errorname", None)
    if sqlite_name in _SQLITE_LIMIT_NAMES or (
        sqlite_name is not None and any(text in str(exc.orig) for text in _SQLITE_LIMIT_MESSAGES)
    ):
        return _limit(cause, str(sqlite_name))
    return None


def _limit(cause: str, code: str) -> DatabaseLimitExceeded:
    # The database's own message may quote the statement's values; the worker log has it.
    return DatabaseLimitExceeded(
        f"The database refused the operation for one of its limits ({cause}, {code}); "
        "nothing was written.",
        cause=cause,
        code=code,
    )


def _sqlstate(exc: sqlalchemy.exc.DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) and len(state) == 5 else None
