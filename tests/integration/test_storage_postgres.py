"""The storage contract on the machine's real PostgreSQL."""

from __future__ import annotations

import pytest

from tests.storage_contract import StorageContract

pytestmark = pytest.mark.integration


class TestPostgresStorage(StorageContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
