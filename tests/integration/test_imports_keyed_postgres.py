"""Unique values and upsert in imports, on the machine's real PostgreSQL (COPY, savepoints,
the upsert lock)."""

from __future__ import annotations

import pytest

from tests.import_keyed_contract import KeyedImportContract

pytestmark = pytest.mark.integration


class TestPostgresKeyedImports(KeyedImportContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
