"""The import contract on SQLite, the embedded default (a file, as workers would share it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.import_contract import ImportContract, sqlite_table_source


class TestSQLiteImports(ImportContract):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"

    @pytest.fixture
    def sql_source(self, tmp_path: Path) -> Callable[[int], dict[str, Any]]:
        return lambda rows: sqlite_table_source(tmp_path / "source.sqlite3", rows)
