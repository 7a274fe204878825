"""Unique values and upsert in imports, on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.import_keyed_contract import KeyedImportContract


class TestSQLiteKeyedImports(KeyedImportContract):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
