"""The CQRS contract on SQLite, the embedded default (a file, so registries can share it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cqrs_contract import CqrsContract


class TestSQLiteCqrs(CqrsContract):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
