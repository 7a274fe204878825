"""Idempotency keys: a write done under a key is done once, and its answer kept.

A write claims its key in its own transaction, before it writes (Invariant 3): a concurrent
duplicate then waits on the key's row and finds it taken; a later one finds the stored result
and answers with it, masked for its own role. The table is `tables.idempotency_keys`.

Record writes and commands (whose command id is the key) both claim through `take`; the
only other writers of a key are PostgreSQL's one-statement creates (`records/pg_statements`,
`cqrs/pg_statements`), which insert it with the write and fall back to `take` when it exists.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..audit import Clock
from ..catalog import ModelEntry
from ..database import Database
from ..errors import IdempotencyConflict
from ..permissions import Permission
from ..tables import idempotency_keys

__all__ = ["IdempotencyKeys"]

_PERMISSION_OF = {
    "create": Permission.CREATE,
    "update": Permission.UPDATE,
    "delete": Permission.DELETE,
}


class IdempotencyKeys:
    """Claims, stores and replays the results of keyed writes."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        # INSERT that does nothing when the key exists (RETURNING tells which happened).
        dialect = postgresql if database.is_postgresql else sqlite
        self._claim = dialect.insert(idempotency_keys).on_conflict_do_nothing().returning(
            idempotency_keys.c.key
        )

    def claim(
        self, conn: Connection, entry: ModelEntry, operation: str, key: str, user_role: str
    ) -> dict[str, Any] | None:
        """Take `key` for this record write; returns None when it was free, else the stored
        answer as the role may see it (raises `IdempotencyConflict` when the key was used
        for another operation)."""
        stored = self.take(conn, entry.name, operation, key)
        return None if stored is None else self._answer(entry, operation, stored, user_role)

    def take(
        self, conn: Connection, model: str, operation: str, key: str
    ) -> Mapping[Any, Any] | None:
        """Claim `key` for a write of `operation` on `model` in `conn`'s transaction: None
        when it was free (it is now this write's), else the stored row, whose `result` is
        the first answer, unmasked. Raises `IdempotencyConflict` when the key was used for
        another operation or model. Commands and record writes both claim here."""
        # Inserting first: a concurrent duplicate waits on the key's row, then finds it
        # taken; a new key costs one statement.
        inserted = conn.execute(self._claim.values(
            key=key, model=model, operation=operation, created_at=self.clock(),
        )).first()
        if inserted is not None:
            return None
        stored = self._stored(conn, key)
        assert stored is not None
        if (stored["model"], stored["operation"]) != (model, operation):
            raise IdempotencyConflict(
                f"Idempotency key {key!r} was used for {stored['operation']} on "
                f"{stored['model']!r}, not for {operation} on {model!r}.",
                key=key,
            )
        return stored

    def replay(
        self, conn: Connection, entry: ModelEntry, operation: str, key: str | None, user_role: str
    ) -> dict[str, Any] | None:
        """The stored answer to a write already done under `key`; None if there is none."""
        stored = self._stored(conn, key) if key is not None else None
        if stored is None or stored["result"] is None:
            return None
        return self._answer(entry, operation, stored, user_role)

    def store_result(self, conn: Connection, key: str, result: Mapping[str, Any]) -> None:
        """Keep the unmasked result of the write done under `key` (in its transaction)."""
        conn.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(result=dict(result))
        )

    def purge(self, older_than: datetime.datetime) -> int:
        """Forget keys created before `older_than`; returns how many were dropped."""
        statement = sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < older_than)
        with self.database.write() as conn:
            return int(conn.execute(statement).rowcount)

    @staticmethod
    def is_key_violation(exc: sa.exc.IntegrityError) -> bool:
        """Whether a PostgreSQL unique violation was on this table."""
        diag = getattr(exc.orig, "diag", None)
        return getattr(diag, "table_name", None) == idempotency_keys.name

    def _answer(
        self, entry: ModelEntry, operation: str, stored: Mapping[Any, Any], user_role: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = stored["result"]
        entry.permissions.require(user_role, _PERMISSION_OF[operation])
        if "deleted" in result:
            return result
        return entry.permissions.view(result, user_role, entry.known_fields)

    def _stored(self, conn: Connection, key: str) -> Mapping[Any, Any] | None:
        query = sa.select(idempotency_keys).where(idempotency_keys.c.key == key)
        return conn.execute(query).mappings().first()
