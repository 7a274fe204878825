"""The CQRS contract on the machine's real PostgreSQL."""

from __future__ import annotations

import pytest

from tests.cqrs_contract import CqrsContract

pytestmark = pytest.mark.integration


class TestPostgresCqrs(CqrsContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
