"""`ModelCache`: one process's cache of the registered models, kept fresh from the catalog.

Before every operation the cache reads the registry version (one primary-key lookup, inside
the operation's own transaction) and reloads the definitions that changed, so an operation
that starts after a registration committed always sees it, in whichever process it runs
(Invariant 2). A model that this process cannot load is remembered with its error, so one bad
definition does not take the others down.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection

from .catalog import Catalog, ModelEntry
from .errors import ModelNotFound, RegistryError

__all__ = ["ModelCache"]


class ModelCache:
    """The models this process knows, by name, and the registry version they belong to."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._entries: dict[str, ModelEntry] = {}
        self._unusable: dict[str, RegistryError] = {}
        self._seen_version = -1
        self._lock = threading.RLock()

    def sync(self, conn: Connection) -> bool:
        """Reload what changed since this process last looked; True if anything did."""
        version = self.catalog.state_version(conn)
        if version == self._seen_version:
            return False
        rows = self.catalog.load_rows(conn)
        with self._lock:
            current: dict[str, ModelEntry] = {}
            unusable: dict[str, RegistryError] = {}
            for name, row in rows.items():
                cached = self._entries.get(name)
                if cached is not None and cached.version == row["version"]:
                    current[name] = cached
                    continue
                try:
                    current[name] = self.catalog.entry_from_row(row)
                except RegistryError as exc:
                    # One model this process cannot load (say, a mask registered only in
                    # another process) must not take the others down with it.
                    unusable[name] = type(exc)(
                        f"Model {name!r} cannot be used in this process: {exc.message}",
                        exc.details,
                    )
            self._entries, self._unusable = current, unusable
            self._seen_version = version
        return True

    def resolve(self, conn: Connection, name: str) -> ModelEntry:
        """The current entry, after checking the registry version in `conn`'s transaction;
        raises `ModelNotFound`, or the error that keeps this process from loading it."""
        self.sync(conn)
        if not isinstance(name, str):
            raise ModelNotFound(f"Model {name!r} is not registered.", model=repr(name))
        with self._lock:
            entry = self._entries.get(name)
            unusable = self._unusable.get(name)
        if unusable is not None:
            raise unusable
        if entry is None:
            raise ModelNotFound(f"Model {name!r} is not registered.", model=name)
        return entry

    def peek(self, name: str) -> tuple[ModelEntry | None, int]:
        """The cached entry (None if unknown) and the registry version it belongs to, without
        asking the database."""
        with self._lock:
            return self._entries.get(name), self._seen_version

    def cached(self, name: str) -> ModelEntry | None:
        """The cached entry under `name` without asking the database (None if unknown)."""
        with self._lock:
            return self._entries.get(name)

    def entries(self) -> dict[str, ModelEntry]:
        """A copy of every cached entry, by name."""
        with self._lock:
            return dict(self._entries)

    def remember(self, entry: ModelEntry) -> None:
        """Keep an entry this process has just committed."""
        with self._lock:
            self._entries[entry.name] = entry
